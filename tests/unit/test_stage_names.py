"""A stage is named in one place besides its own module (issue 28): everything else the code knows
of it (colour, advice, bulk phase, model flag, counters, failures) comes from its description."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from ytingest.stages.description import PIPELINE

REPO = Path(__file__).resolve().parents[2]
SOURCES = (".py", ".js", ".html")
MODULE = {"asr": "transcribe"}  # a stage's own module, where it is not named after the stage
# the same word meaning something else there (file, word): why it is not the stage
HOMONYMS = {
    ("ytingest/pipeline/budget.py", "download"): "a kind of request the budget paces, beside listing",
    ("ytingest/monitor/http.py", "download"): "that kind of request, as a /metrics label",
    ("ytingest/models/decoder.py", "download"): "the decoder child's header field: the download ended",
    ("ytingest/stages/decoder_process.py", "download"): "the same header field, read by the parent",
    ("ytingest/backends.py", "asr"): "a kind of backend (ASR_BACKEND)",
    ("ytingest/backends.py", "embed"): "a kind of backend (EMBED_BACKEND)",
    ("ytingest/cli/main.py", "speakers"): "the speakers command",
    ("ytingest/cli/args.py", "speakers"): "the speakers command",
    ("ytingest/cli/settings.py", "speakers"): "the SPEAKERS setting (--no-speakers)",
    ("ytingest/cli/settings.py", "store"): "argparse's store action",
    ("ytingest/db/voiceprints.py", "speakers"): "what a database connection is for, in its errors",
    ("ytingest/testing/__main__.py", "speakers"): "the speakers command, as the demo runs it",
}


def quoted(path: Path) -> set[str]:
    """The values of the string literals in ``path``: Python's string tokens (not comments, nor
    a word inside a docstring), or the quoted words of a script or template."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return {m.group(2) for m in re.finditer(r"""(["'])([\w-]+)\1""", text)}
    found = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING:
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):  # an f-string
                continue
            if isinstance(value, str):
                found.add(value)
    return found


def sources() -> dict[str, set[str]]:
    """Every non-test source file of the package, by its path from the repository root."""
    files = (
        p for p in (REPO / "ytingest").rglob("*") if p.suffix in SOURCES and "__pycache__" not in p.parts
    )
    return {p.relative_to(REPO).as_posix(): quoted(p) for p in sorted(files)}


def test_each_stage_name_is_quoted_in_at_most_one_file_besides_its_module_and_the_description() -> None:
    """Diagnosis, autotune, dashboard, report, run page, bulk phases, failures and counters read
    a stage from its description; the quoted name may stay in one other file at most."""
    files = sources()
    elsewhere = {}
    for st in PIPELINE:
        own = {f"ytingest/stages/{MODULE.get(st.name, st.name)}.py", "ytingest/stages/description.py"}
        elsewhere[st.name] = [
            path
            for path, words in files.items()
            if st.name in words and path not in own and (path, st.name) not in HOMONYMS
        ]
    assert {n: paths for n, paths in elsewhere.items() if len(paths) > 1} == {}


def test_each_homonym_listed_is_still_there() -> None:
    """A homonym that has gone from its file leaves the list, so it hides nothing later."""
    files = sources()
    gone = [(path, word) for path, word in HOMONYMS if word not in files.get(path, set())]
    assert gone == []
