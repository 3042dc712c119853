"""Synchronous wrappers of the ML libraries. Only ever called inside an executor thread."""

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The file's SHA-256 as hex, read in blocks (model weights are hundreds of MB)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
