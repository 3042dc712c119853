"""The Engine API in-process with every real component, on a throttled local channel."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import structlog

from ytingest import Engine, Settings
from ytingest.testing import ChannelServer

pytestmark = pytest.mark.slow


async def test_stages_overlap_and_the_loop_never_blocks(
    tmp_path: Path, fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """On a slow source, ASR and storing start before the last download ends; no callback blocks >1 s."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 1.0
    caplog.set_level(logging.WARNING, logger="asyncio")
    settings = Settings(ytingest_home=tmp_path, database_url=fresh_dsn, io_workers=2, batch_max_age_s=0.5)
    async with ChannelServer(bandwidth=24_000) as channel:
        with structlog.testing.capture_logs() as events:
            async with Engine(settings) as engine:
                summary = await engine.stream(channel.feed_url)
                hits = await engine.search("the sourdough starter contains wild yeast", limit=1)
    names = [e["event"] for e in events]
    last_download = max(i for i, n in enumerate(names) if n == "download_done")
    assert summary.done == 6 and summary.failed == 0
    assert names.index("transcribe_start") < last_download
    assert names.index("video_stored") < last_download
    last_store = max(i for i, n in enumerate(names) if n == "video_stored")
    assert names.index("search_index_built") > last_store  # HNSW built once, after the rows
    assert hits[0].video_id == "ep06-bread"
    slow = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert slow == [], slow
    assert list((tmp_path / "audio").iterdir()) == []
