"""Database faults through a TCP proxy on real PostgreSQL: resets mid-COPY, outages, a dead server."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
import structlog

from tests.integration.test_database import item, open_db
from ytingest import Engine, Settings, StoreError
from ytingest.models.asr import WhisperTranscriber
from ytingest.models.embedder import SentenceEmbedder
from ytingest.testing import ChannelServer, sample_episodes
from ytingest.testing.pgproxy import PgProxy


async def test_reset_mid_copy_is_retried_without_duplicates(fresh_dsn: str, conn: asyncpg.Connection) -> None:
    """The proxy drops the connection as COPY starts: the store is retried and rows appear once."""
    async with PgProxy(fresh_dsn) as proxy:
        db = await open_db(proxy.dsn)
        db.retry_s = 10
        try:
            await db.register_video(item("a", 5).transcript.video)
            proxy.reset_on_copy = True
            with structlog.testing.capture_logs() as logs:
                await db.store_transcript(item("a", 5), asr_model="m", embed_model="e")
        finally:
            await db.close()
    assert proxy.resets == 1
    assert any(e["event"] == "db_retry" for e in logs)
    assert await conn.fetchval("SELECT count(*) FROM segments WHERE video_id = 'a'") == 5
    assert await conn.fetchval("SELECT status FROM videos WHERE id = 'a'") == "done"


async def test_data_errors_are_not_retried(fresh_dsn: str) -> None:
    """A statement the server rejects fails at once; only lost connections are retried."""
    db = await open_db(fresh_dsn)
    db.retry_s = 30
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError, match="foreign key"):
            await db.store_transcript(item("never-registered", 2), asr_model="m", embed_model="e")
        assert time.monotonic() - t0 < 5
    finally:
        await db.close()


@pytest.fixture(scope="module")
def models() -> tuple[WhisperTranscriber, SentenceEmbedder]:
    return WhisperTranscriber("bundled", device="cpu"), SentenceEmbedder("bundled", device="cpu")


def _channel(n: int) -> ChannelServer:
    base = sample_episodes()[:5]
    return ChannelServer([replace(base[i % 5], id=f"{base[i % 5].id}-{i}") for i in range(n)])


async def _when_stored(engine: Engine, run: asyncio.Task[object], n: int) -> None:
    while not run.done():
        await asyncio.wait({run}, timeout=0.1)
        if engine.monitor is not None and engine.monitor.sampler.metrics.stages["store"].done >= n:
            return


async def _row_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Per video: status, the segment count it claims, and the rows actually stored (n)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT v.id, v.status, v.segments, count(s.idx) AS n FROM videos v "
        "LEFT JOIN segments s ON s.video_id = v.id GROUP BY v.id"
    )
    return rows


@pytest.mark.slow
async def test_database_outage_backs_up_the_pipeline_and_work_resumes(
    tmp_path: Path,
    fresh_dsn: str,
    conn: asyncpg.Connection,
    models: tuple[WhisperTranscriber, SentenceEmbedder],
) -> None:
    """The database disappears mid-run until the store has retried for 2 s: stages wait (queues
    stay bounded), then all is stored."""
    asr, emb = models
    async with PgProxy(fresh_dsn) as proxy, _channel(8) as channel:
        channel.held = {e.id for e in channel.episodes[2:]}  # still to store when the database goes
        queues = {"db_queue_size": 2, "embed_queue_size": 2, "decode_queue_size": 2}
        cfg = Settings(
            ytingest_home=tmp_path,
            database_url=proxy.dsn,
            db_retry_s=60,
            batch_max_age_s=0.2,
            monitor_interval_s=0.25,
            **queues,
        )
        with structlog.testing.capture_logs() as logs:
            async with Engine(cfg, transcriber=asr, embedder=emb) as engine:
                run = asyncio.create_task(engine.stream(channel.feed_url))
                await _when_stored(engine, run, 1)
                proxy.take_down()
                channel.release()
                for _ in range(450):  # the held videos reach the store while it is gone
                    if any(e["event"] == "db_retry" for e in logs):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the store never met the outage")
                await asyncio.sleep(2)
                proxy.down = False
                summary = await asyncio.wait_for(run, 120)
                history = list(engine.monitor.history) if engine.monitor else []
    assert (summary.done, summary.failed) == (8, 0)
    for snap in history:
        for stage in snap.stages.values():
            assert stage.depth <= stage.capacity
    rows = await _row_counts(conn)
    assert len(rows) == 8 and all(r["segments"] == r["n"] > 0 for r in rows)


@pytest.mark.slow
async def test_database_gone_for_good_fails_clearly_and_marks_nothing_done_unstored(
    tmp_path: Path,
    fresh_dsn: str,
    conn: asyncpg.Connection,
    models: tuple[WhisperTranscriber, SentenceEmbedder],
) -> None:
    """The database never comes back: StoreError after DB_RETRY_S; every 'done' video has its rows.
    Four of the six videos are held at the channel until the database is gone, so they are still to
    store when it goes (batched decoding can finish every unheld video at once)."""
    asr, emb = models
    async with PgProxy(fresh_dsn) as proxy, _channel(6) as channel:
        channel.held = {e.id for e in channel.episodes[2:]}
        cfg = Settings(ytingest_home=tmp_path, database_url=proxy.dsn, db_retry_s=2, batch_max_age_s=0.2)
        async with Engine(cfg, transcriber=asr, embedder=emb) as engine:
            run = asyncio.create_task(engine.stream(channel.feed_url))
            await _when_stored(engine, run, 1)
            assert not run.done()
            proxy.take_down()
            channel.release()
            with pytest.raises(StoreError):
                await asyncio.wait_for(run, 120)
    rows = await _row_counts(conn)
    done = [r for r in rows if r["status"] == "done"]
    assert done and all(r["segments"] == r["n"] > 0 for r in done)
    assert {r["id"] for r in done} <= {e.id for e in channel.episodes[:2]}
    assert all(r["n"] == 0 for r in rows if r["status"] != "done")
