"""The decoder's children (the reader process and the spawned VAD + features workers) start
without the database's secrets in their environment (``ytingest.childenv``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ytingest.models.asr import WhisperTranscriber
from ytingest.stages.decode_pool import DecodePool

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/environ"),
]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw.split(b"\0") if item)


async def test_decoder_children_never_see_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """DATABASE_URL and PGPASSWORD set here: absent in the reader's and every worker's starting
    environment, present again here afterwards; PATH reached them."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:S3CRET@127.0.0.1:9/db")
    monkeypatch.setenv("PGPASSWORD", "S3CRET")
    asr = WhisperTranscriber(batching="cross", batch_size=8, window_s=60)
    pool = DecodePool(asr.prepare_options, workers=2)
    try:
        await pool.start()
        reader = pool._reader._proc
        assert reader is not None and pool._pool is not None
        pids = [reader.pid, *pool._pool._processes]
        assert len(pids) == 3
        for pid in pids:
            env = _environ(pid)
            assert "DATABASE_URL" not in env and "PGPASSWORD" not in env, pid
            assert env.get("PATH") == os.environ["PATH"]
    finally:
        await pool.aclose()
    assert os.environ["DATABASE_URL"].endswith("/db") and os.environ["PGPASSWORD"] == "S3CRET"
