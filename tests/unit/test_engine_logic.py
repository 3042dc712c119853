"""The engine's own logic with fake stages: bounds, backpressure, ordering, failures, shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import structlog

from ytingest import Engine, Settings, StoreError
from ytingest.items import AudioFile, LabelledWindow, Segment, VideoRef, WindowResult
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.counters import Metrics
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.embed import run_batcher
from ytingest.testing.fakes import (
    FakeDownloader,
    FakeEmbedder,
    FakeSource,
    FakeTranscriber,
    MemoryStore,
    refs,
)


def make_engine(tmp_path: Path, **parts: Any) -> tuple[Engine, dict[str, Any]]:
    knobs = {k: parts.pop(k) for k in list(parts) if k in Settings.model_fields}
    knobs.setdefault("speakers", False)  # the fakes have no speaker model (a test passes a tagger)
    settings = Settings(ytingest_home=tmp_path, batch_max_age_s=0.05, **knobs)
    defaults: dict[str, Any] = {
        "discoverer": FakeSource(refs(10)),
        "downloader": FakeDownloader(),
        "transcriber": FakeTranscriber(),
        "embedder": FakeEmbedder(),
        "database": MemoryStore(),
    }
    defaults.update(parts)
    return Engine(settings, **defaults), defaults


async def test_downloads_never_exceed_io_workers(tmp_path: Path) -> None:
    """With 20 videos and IO_WORKERS=3, exactly 3 downloads run at once at the peak."""
    engine, p = make_engine(
        tmp_path, io_workers=3, discoverer=FakeSource(refs(20)), downloader=FakeDownloader(delay=0.03)
    )
    async with engine:
        summary = await engine.stream("chan")
    assert summary.done == 20
    assert p["downloader"].max_active == 3


async def test_slow_asr_backpressure_bounds_files_on_disk(tmp_path: Path) -> None:
    """A slow ASR stage makes downloads wait: files on disk never exceed io + queues + decode + asr slots."""
    engine, p = make_engine(
        tmp_path,
        io_workers=4,
        asr_queue_size=2,
        asr_batch_size=1,  # the queue ahead of ASR holds ASR_QUEUE_SIZE x ASR_BATCH_SIZE chunks
        asr_workers=1,
        decode_queue_size=2,
        discoverer=FakeSource(refs(16)),
        downloader=FakeDownloader(delay=0.001),
        transcriber=FakeTranscriber(delay=0.05),
    )
    async with engine:
        summary = await engine.stream("chan")
    assert summary.done == 16
    assert p["downloader"].max_files_on_disk <= 4 + 2 + 1 + 2 + 1  # io, decode_q, decoding, asr_q, asr
    assert list((tmp_path / "audio").iterdir()) == []  # every file deleted once transcribed


async def test_each_video_is_stored_once_and_failures_are_recorded(tmp_path: Path) -> None:
    """Download and decode failures are recorded with reasons; every other video is stored once."""
    db = MemoryStore()
    engine, p = make_engine(
        tmp_path,
        database=db,
        downloader=FakeDownloader(fail={"v002", "v005"}),
        transcriber=FakeTranscriber(fail={"v007"}),
    )
    async with engine:
        summary = await engine.stream("chan")
    assert (summary.done, summary.failed) == (7, 3)
    assert sorted(db.store_calls) == sorted(set(db.store_calls))
    assert {f.video_id: f.stage for f in summary.failures} == {
        "v002": "download",
        "v005": "download",
        "v007": "asr",  # the stage's name, as in /metrics and the verdicts
    }
    assert "404" in db.reasons["v002"]
    assert [v for v, s in db.statuses.items() if s == "done"] == sorted(db.stored)


async def test_already_stored_videos_are_skipped_before_download(tmp_path: Path) -> None:
    """Videos the ledger marks done are counted as skipped and never downloaded."""
    db = MemoryStore(done={"v000", "v001", "v002"})
    engine, p = make_engine(tmp_path, database=db)
    async with engine:
        summary = await engine.stream("chan")
    assert (summary.done, summary.skipped) == (7, 3)
    assert not {"v000", "v001", "v002"} & set(p["downloader"].finished)


async def test_limit_and_skip_shorts_prefilter_listing_order(tmp_path: Path) -> None:
    """--skip-shorts drops short videos; --limit takes the first N of the rest, in listing order."""
    mixed = [VideoRef(f"v{i}", f"u{i}", duration=30.0 if i % 2 else 600.0) for i in range(10)]
    engine, p = make_engine(tmp_path, discoverer=FakeSource(mixed))
    async with engine:
        summary = await engine.stream("chan", limit=3, skip_shorts=True)
    assert sorted(p["downloader"].finished) == ["v0", "v2", "v4"]
    assert summary.done == 3
    assert summary.skipped == 2  # v1 and v3, seen before the limit was reached


async def test_stop_finishes_work_in_flight_and_starts_nothing_new(tmp_path: Path) -> None:
    """stop(): discovery ends, the videos being decoded or transcribed are stored, the rest stay
    pending; a finished download not yet decoded is kept for the next run, not dropped."""
    db = MemoryStore()
    engine, p = make_engine(
        tmp_path,
        database=db,
        io_workers=2,
        discoverer=FakeSource(refs(50), delay=0.01),
        downloader=FakeDownloader(delay=0.02),
    )
    async with engine:
        task = asyncio.create_task(engine.stream("chan"))
        await asyncio.wait_for(db.three_stored.wait(), 10)
        engine.stop()
        summary = await asyncio.wait_for(task, 10)
    assert summary.stopped_early
    assert 3 <= summary.done < 50
    kept = (
        sorted(f.name.rsplit(".", 1)[0] for f in (tmp_path / "kept").glob("*"))
        if (tmp_path / "kept").exists()
        else []
    )
    assert sorted(db.store_calls + kept) == sorted(p["downloader"].finished)  # nothing downloaded dropped
    assert not set(db.store_calls) & set(kept)
    assert all(s in ("done", "pending") for s in db.statuses.values())


async def test_a_slow_store_writes_the_waiting_videos_together(tmp_path: Path) -> None:
    """While one group is being written, the next videos queue up and go in as one group."""
    db = MemoryStore(store_delay=0.02)
    engine, _ = make_engine(
        tmp_path, database=db, db_workers=1, db_queue_size=8, discoverer=FakeSource(refs(30))
    )
    async with engine:
        summary = await engine.stream("chan")
    assert summary.done == 30 and sum(db.store_groups) == 30
    assert max(db.store_groups) > 1 and len(db.store_groups) < 30
    assert sorted(db.store_calls) == sorted(set(db.store_calls))
    assert db.index_builds == 1  # the search index, once, after the rows


async def test_a_stopped_run_leaves_the_index_build_to_the_next(tmp_path: Path) -> None:
    """Stopping means stop soon: no index build over the whole table at the end."""
    db = MemoryStore()
    engine, _ = make_engine(tmp_path, database=db, discoverer=FakeSource(refs(50), delay=0.01))
    async with engine:
        task = asyncio.create_task(engine.stream("chan"))
        await asyncio.wait_for(db.three_stored.wait(), 10)
        engine.stop()
        assert (await asyncio.wait_for(task, 10)).stopped_early
    assert db.index_builds == 0


async def test_a_failed_index_build_leaves_it_to_the_next_run(tmp_path: Path) -> None:
    """The database drops out while the indexes are built after the rows: every video is stored,
    so the run ends normally (the next one builds them) instead of failing with exit 2."""
    db = MemoryStore(fail_index=True)
    engine, _ = make_engine(tmp_path, database=db, discoverer=FakeSource(refs(5)))
    async with engine:
        summary = await engine.stream("chan")
    assert summary.done == 5 and not summary.failed and db.index_builds == 1


async def test_store_error_ends_the_run_with_that_error(tmp_path: Path) -> None:
    """A database that refuses writes ends stream() with StoreError itself, not an ExceptionGroup."""
    engine, _ = make_engine(tmp_path, database=MemoryStore(fail_store=True))
    async with engine:
        with pytest.raises(StoreError, match="connection reset"):
            await engine.stream("chan")


def _metrics() -> Metrics:
    return metrics_for(PIPELINE, Settings())


def _transcript(vid: str, n: int) -> LabelledWindow:
    """A whole video as the embed stage gets it: its one window, labelled."""
    segments = tuple(Segment(i, i, i + 1, "t") for i in range(n))
    file = AudioFile(VideoRef(vid, "u"), Path(f"/nowhere/{vid}"), 1)
    return LabelledWindow(file, WindowResult(0, True, segments, float(n), "en"))


async def test_batcher_flushes_at_batch_size_across_videos(tmp_path: Path) -> None:
    """Segments of several videos share one encode call once BATCH_SIZE rows wait."""
    ctx = RunContext(
        Settings(ytingest_home=tmp_path, batch_size=10, batch_max_age_s=60), MemoryStore(), _metrics()
    )
    emb = FakeEmbedder()
    inbox: asyncio.Queue[LabelledWindow | None] = asyncio.Queue()
    outbox: asyncio.Queue[Any] = asyncio.Queue()
    for i in range(5):
        inbox.put_nowait(_transcript(f"v{i}", 4))
    inbox.put_nowait(None)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        await run_batcher(ctx, emb, pool, inbox, outbox, counters=ctx.metrics.stages["embed"])
    assert emb.batches == [12, 8]  # 3 videos reach 10 rows, the last 2 flush at the end
    items = [outbox.get_nowait() for _ in range(outbox.qsize())]
    assert [i.transcript.video.id for i in items] == ["v0", "v1", "v2", "v3", "v4"]


async def test_batcher_flushes_by_age_without_waiting_for_more(tmp_path: Path) -> None:
    """A lone small transcript is embedded after BATCH_MAX_AGE_S, not held until the run ends."""
    ctx = RunContext(
        Settings(ytingest_home=tmp_path, batch_size=768, batch_max_age_s=0.1), MemoryStore(), _metrics()
    )
    emb = FakeEmbedder()
    inbox: asyncio.Queue[LabelledWindow | None] = asyncio.Queue()
    outbox: asyncio.Queue[Any] = asyncio.Queue()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        embed = ctx.metrics.stages["embed"]
        task = asyncio.create_task(run_batcher(ctx, emb, pool, inbox, outbox, counters=embed))
        inbox.put_nowait(_transcript("v0", 2))
        item = await asyncio.wait_for(outbox.get(), 2)
        assert item.transcript.video.id == "v0"
        inbox.put_nowait(None)
        await asyncio.wait_for(task, 2)
    assert emb.batches == [2]


async def test_embedding_out_of_memory_halves_the_forward_batch_and_loses_nothing(tmp_path: Path) -> None:
    """A CUDA OOM while embedding halves ENCODE_BATCH_SIZE (not BATCH_SIZE) and retries the same
    rows: every video is stored, and /status reports the halved value while the run goes on."""
    from ytingest.errors import EmbedError

    knobs_seen: list[dict[str, Any]] = []

    class OomEmbedder(FakeEmbedder):
        def encode(self, texts: Any, batch_size: int | None = None) -> Any:
            if batch_size is None or batch_size > 4:
                self.forward_sizes.append(batch_size)
                raise EmbedError("embedding failed: OutOfMemoryError", out_of_memory=True)
            knobs_seen.append(engine.status_document()["knobs"])
            return super().encode(texts, batch_size)

    emb = OomEmbedder()
    db = MemoryStore()
    engine, _ = make_engine(tmp_path, embedder=emb, database=db, encode_batch_size=32, batch_size=768)
    with structlog.testing.capture_logs() as logs:
        async with engine:
            summary = await engine.stream("chan")
    assert (summary.done, summary.failed) == (10, 0)
    assert emb.forward_sizes[:4] == [32, 16, 8, 4] and all(n == 4 for n in emb.forward_sizes[4:])
    tunes = [(e["knob"], e["before"], e["after"]) for e in logs if e["event"] == "tune"]
    assert tunes == [("ENCODE_BATCH_SIZE", 32, 16), ("ENCODE_BATCH_SIZE", 16, 8), ("ENCODE_BATCH_SIZE", 8, 4)]
    assert knobs_seen and knobs_seen[0]["encode_batch_size"] == 4 and knobs_seen[0]["batch_size"] == 768
    assert sum(db.stored.values()) == 30
