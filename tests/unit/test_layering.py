"""Layering: the import contracts in ``.importlinter`` (import-linter, also run by ``make lint``) hold
for ytingest, and each of them fails on a copy of the package given the import it forbids. Plus
what the contracts cannot see: a package folder without ``__init__.py`` and modules over MAX_LINES."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ytingest"
CONFIG = ROOT / ".importlinter"
MAX_LINES = 400

# contract id -> (file of the copy, a line added to it, what the report must name)
VIOLATIONS = {
    "layers": ("ports.py", "from ytingest import runtime", "ytingest.ports -> ytingest.runtime"),
    "acyclic": ("db/schema.py", "from ytingest.db import pool", "- .schema -> .pool"),
    "models-not-up": (
        "models/embedder.py",
        "import ytingest.stages.store",
        "ytingest.models.embedder -> ytingest.stages.store",
    ),
    "asyncpg": ("search.py", "import asyncpg", "ytingest.search -> asyncpg"),
    "root": ("stages/store.py", "from ytingest import Engine", "ytingest.stages.store -> ytingest"),
}


def _lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` of this venv on whatever ``ytingest`` is first on the path from ``cwd``."""
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo", str(CONFIG)]
    command += [arg for c in contracts for arg in ("--contract", c)]
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_are_kept() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.fixture(scope="module")
def broken_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package with one forbidden import per contract, each in a function body
    (``lint-imports`` reads the source; nothing is imported)."""
    where = tmp_path_factory.mktemp("broken")
    shutil.copytree(PACKAGE, where / "ytingest", ignore=shutil.ignore_patterns("__pycache__"))
    for name, line, _ in VIOLATIONS.values():
        with (where / "ytingest" / name).open("a") as f:
            f.write(f"\n\ndef _forbidden() -> None:\n    {line}  # noqa\n")
    (where / "ytingest" / "unplaced.py").write_text('"""A new top-level module, in no layer."""\n')
    return where


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_each_contract_catches_the_import_it_forbids(broken_copy: Path, contract: str) -> None:
    done = _lint_imports(broken_copy, contract)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 broken" in done.stdout
    assert VIOLATIONS[contract][2] in done.stdout, done.stdout


def test_every_package_folder_has_an_init() -> None:
    """import-linter skips a folder without ``__init__.py`` (a namespace package) and its modules."""
    folders = {p.parent for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    missing = sorted(str(d.relative_to(ROOT)) for d in folders if not (d / "__init__.py").is_file())
    assert not missing, f"folders without __init__.py (invisible to lint-imports): {missing}"


def test_no_module_is_over_the_line_limit() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted(PACKAGE.rglob("*.py"))
        if "__pycache__" not in p.parts and (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_a_new_top_level_module_must_be_given_a_layer(broken_copy: Path) -> None:
    done = _lint_imports(broken_copy, "layers")
    assert done.returncode == 1
    assert "not listed as layers:\n\n- ytingest.unplaced\n" in done.stdout, done.stdout


def test_the_engine_stays_a_thin_facade() -> None:
    """engine.py composes (database, ``Runtime``, ``open_run``/``drive``); work goes elsewhere."""
    assert len((PACKAGE / "engine.py").read_text().splitlines()) <= 250
