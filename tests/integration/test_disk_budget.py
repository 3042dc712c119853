"""The disk budget on the real pipeline: downloads pause above MAX_AUDIO_BYTES and resume below."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from ytingest import Engine, Settings
from ytingest.models.asr import AsrResult, WhisperTranscriber
from ytingest.models.embedder import SentenceEmbedder
from ytingest.testing import ChannelServer, sample_episodes

pytestmark = pytest.mark.slow
BUDGET = 150_000


async def test_downloads_pause_above_the_budget_and_everything_is_still_stored(
    tmp_path: Path, fresh_dsn: str
) -> None:
    """With ASR slowed, audio on disk stays near MAX_AUDIO_BYTES, the verdict says disk, all are stored."""
    asr, emb = WhisperTranscriber("bundled", device="cpu"), SentenceEmbedder("bundled", device="cpu")

    class SlowAsr:
        name = asr.name

        def transcribe(self, path: Path) -> AsrResult:
            time.sleep(1.0)
            return asr.transcribe(path)

    base = sample_episodes()[:5]
    episodes = [replace(base[i % 5], id=f"{base[i % 5].id}-{i}") for i in range(8)]
    largest = max(e.path.stat().st_size for e in episodes)
    cfg = Settings(
        ytingest_home=tmp_path,
        database_url=fresh_dsn,
        io_workers=4,
        decode_queue_size=4,
        max_audio_bytes=BUDGET,
        monitor_interval_s=0.2,
        diagnose_window_s=0.6,
    )
    async with ChannelServer(episodes) as channel, Engine(cfg, transcriber=SlowAsr(), embedder=emb) as engine:
        summary = await engine.stream(channel.feed_url)
        history = list(engine.monitor.history) if engine.monitor else []
    assert (summary.done, summary.failed) == (8, 0)
    assert any(s.disk_blocked for s in history)
    assert any(s.verdict.get("stage") == "disk" for s in history)
    # a download starts only below the budget, so at most IO_WORKERS files can land on top of it
    assert max(s.audio_dir_bytes for s in history) <= BUDGET + cfg.io_workers * largest
