"""MODE=bulk with fake stages: phases run one after another, in waves that respect the disk budget."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.unit.test_engine_logic import make_engine
from ytingest.items import AudioFile, VideoRef
from ytingest.models.asr import AsrResult
from ytingest.testing.fakes import FakeDownloader, FakeSource, FakeTranscriber, MemoryStore, refs


@dataclass
class TimedDownloader(FakeDownloader):
    """Reports every file as ``size`` bytes and remembers when each download finished."""

    size: int = 1
    ends: list[float] = field(default_factory=list)

    async def download(self, ref: VideoRef, dest: Path) -> AudioFile:
        audio = await super().download(ref, dest)
        self.ends.append(time.monotonic())
        return AudioFile(audio.video, audio.path, self.size)


@dataclass
class TimedTranscriber(FakeTranscriber):
    starts: list[float] = field(default_factory=list)

    def transcribe(self, path: Path) -> AsrResult:
        self.starts.append(time.monotonic())
        return super().transcribe(path)


async def test_bulk_downloads_everything_before_transcribing(tmp_path: Path) -> None:
    """Every download ends before the first transcription starts; every video is stored once."""
    db, dl, asr = MemoryStore(), TimedDownloader(delay=0.01), TimedTranscriber()
    engine, _ = make_engine(
        tmp_path,
        mode="bulk",
        io_workers=3,
        database=db,
        downloader=dl,
        transcriber=asr,
        discoverer=FakeSource(refs(12)),
    )
    async with engine:
        summary = await engine.stream("chan")
    assert (summary.done, summary.failed) == (12, 0)
    assert sorted(db.store_calls) == sorted(set(db.store_calls)) and len(db.store_calls) == 12
    assert max(dl.ends) < min(asr.starts)
    assert list((tmp_path / "audio").iterdir()) == []


async def test_bulk_works_in_waves_when_the_channel_exceeds_the_disk_budget(tmp_path: Path) -> None:
    """With a 1 MB budget and 0.4 MB files, transcription starts before the last download ends."""
    db, dl, asr = MemoryStore(), TimedDownloader(delay=0.01, size=400_000), TimedTranscriber()
    engine, _ = make_engine(
        tmp_path,
        mode="bulk",
        io_workers=2,
        bulk_disk_budget_mb=1,
        database=db,
        downloader=dl,
        transcriber=asr,
        discoverer=FakeSource(refs(12)),
    )
    async with engine:
        summary = await engine.stream("chan")
    assert summary.done == 12
    assert min(asr.starts) < max(dl.ends)
    assert dl.max_files_on_disk <= 3 + 2 + 2  # a wave: the budget (3 files), downloads in flight, 2 queued
