"""Autotune in a whole (fake-stage) run: a 429 burst halves IO_WORKERS, a clean source climbs again."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from tests.unit.test_engine_logic import make_engine
from ytingest.errors import RateLimitedError
from ytingest.items import AudioFile, VideoRef
from ytingest.testing.fakes import FakeDownloader, FakeSource, refs


@dataclass
class BurstDownloader(FakeDownloader):
    """The site answers 429 to every download for ``burst_s`` after the first, then serves slowly."""

    burst_s: float = 0.6
    first: float | None = None
    throttled: int = 0

    async def download(self, ref: VideoRef, dest: Path) -> AudioFile:
        self.first = self.first or time.monotonic()
        if time.monotonic() - self.first < self.burst_s:
            self.throttled += 1
            await asyncio.sleep(0.01)
            raise RateLimitedError("HTTP Error 429: Too Many Requests")
        return await super().download(ref, dest)


async def test_a_429_burst_halves_io_workers_then_a_clean_source_climbs_back(tmp_path: Path) -> None:
    """AIMD through the real monitor: source verdicts halve IO_WORKERS; once the pause has cleared
    and downloads starve ASR, it climbs one download per step; every video is still stored."""
    downloader = BurstDownloader(delay=0.25)
    engine, _ = make_engine(
        tmp_path,
        io_workers=8,
        autotune=True,
        io_workers_max=32,
        monitor_interval_s=0.05,
        diagnose_window_s=0.15,
        rate_limit_base_s=0.3,
        rate_limit_max_s=0.3,
        discoverer=FakeSource(refs(120)),
        downloader=downloader,
    )
    with structlog.testing.capture_logs() as logs:
        async with engine:
            summary = await engine.stream("chan")
    assert (summary.done, summary.failed) == (120, 0)
    assert downloader.throttled > 0
    tunes = [(e["before"], e["after"]) for e in logs if e["event"] == "tune" and e["knob"] == "IO_WORKERS"]
    downs = [t for t in tunes if t[1] < t[0]]
    ups = [t for t in tunes if t[1] > t[0]]
    assert downs and downs[0] == (8, 4), tunes  # multiplicative decrease
    assert all(after == before // 2 for before, after in downs), tunes
    first_up = tunes.index(ups[0])
    assert all(t in downs for t in tunes[:first_up]), tunes  # no climb during the burst
    assert len(ups) >= 3 and all(after == before + 1 for before, after in ups), tunes  # additive increase
    assert ups[-1][1] > downs[-1][1]  # it came back above the floor the burst left
