"""The database layer on real PostgreSQL + pgvector: schema, atomic stores, no duplicates, search."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest

from ytingest.db.database import Database
from ytingest.db.schema import MIGRATIONS
from ytingest.errors import ConfigError, StoreError
from ytingest.items import EmbeddedTranscript, Segment, Transcript, VideoRef
from ytingest.search import SearchQuery, timestamp_url

DIM = 8


def semantic(limit: int) -> SearchQuery:
    return SearchQuery("q", mode="semantic", limit=limit)


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    return v


def item(vid: str, n: int, axis: int = 0) -> EmbeddedTranscript:
    segs = tuple(Segment(i, i * 2.0, i * 2.0 + 1.5, f"{vid} says {i}") for i in range(n))
    vecs = np.stack([unit(axis + i) for i in range(n)]) if n else np.zeros((0, DIM), np.float32)
    ref = VideoRef(vid, f"http://x/{vid}", title=vid.upper(), webpage_url=f"http://x/{vid}")
    return EmbeddedTranscript(Transcript(ref, segs, n * 2.0), vecs)


async def open_db(dsn: str, dim: int = DIM) -> Database:
    db = Database(dsn)
    await db.connect()
    await db.migrate(dim)
    return db


async def test_migrations_are_idempotent_and_recorded(fresh_dsn: str, conn: asyncpg.Connection) -> None:
    """Running the migrations twice leaves one schema, version and vector size recorded."""
    for _ in range(2):
        db = await open_db(fresh_dsn)
        await db.close()
    meta = dict(await conn.fetch("SELECT key, value FROM ytingest_meta"))
    assert meta == {"schema_version": str(len(MIGRATIONS)), "embedding_dim": str(DIM)}
    indexes = {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes")}
    assert "segments_pkey" in indexes
    assert not {"segments_embedding_hnsw", "segments_text_fts"} & indexes  # built after the rows


async def test_search_index_is_built_once_after_the_rows_and_used(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """ensure_search_index builds HNSW over the stored rows once; search finds the same hit by it."""
    db = await open_db(fresh_dsn)
    try:
        await db.register_video(item("a", 6).transcript.video)
        await db.store_transcript(item("a", 6), asr_model="m", embed_model="e")
        before = await db.search(semantic(1), unit(3))  # exact scan, no index yet
        assert await db.ensure_search_index() is True
        assert await db.ensure_search_index() is False
        after = await db.search(semantic(1), unit(3))
        assert before == after and after[0].text == "a says 3"
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN SELECT video_id FROM segments WHERE embed_model = 'e'"
                    f" ORDER BY (embedding::vector({DIM})) <=> $1::vector LIMIT 3",
                    str(unit(3).tolist()),
                )
            )
        assert "segments_embedding_hnsw_1" in plan  # model e's own index
    finally:
        await db.close()


async def test_a_group_of_videos_is_stored_in_one_transaction(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """Several videos in one call: all rows and statuses land; a repeat replaces, never duplicates;
    one unregistered video fails the whole group and leaves nothing of it."""
    db = await open_db(fresh_dsn)
    try:
        group = [item("a", 2), item("b", 3, axis=2), item("c", 0)]
        for it in group:
            await db.register_video(it.transcript.video)
        for _ in range(2):
            await db.store_transcripts(group, asr_model="m", embed_model="e")
        rows = await conn.fetch("SELECT video_id, count(*) AS n FROM segments GROUP BY video_id ORDER BY 1")
        assert [tuple(r) for r in rows] == [("a", 2), ("b", 3)]
        videos = await conn.fetch("SELECT id, status, segments, audio_seconds FROM videos ORDER BY id")
        expected = [("a", "done", 2, 4.0), ("b", "done", 3, 6.0), ("c", "done", 0, 0.0)]
        assert [tuple(v) for v in videos] == expected
        with pytest.raises(StoreError, match="2 videos .d, zzz.: not every video is registered"):
            await db.register_video(item("d", 2).transcript.video)
            await db.store_transcripts([item("d", 2), item("zzz", 0)], asr_model="m", embed_model="e")
        assert await conn.fetchval("SELECT count(*) FROM segments WHERE video_id IN ('d', 'zzz')") == 0
        assert await conn.fetchval("SELECT status FROM videos WHERE id = 'd'") == "pending"
    finally:
        await db.close()


async def test_a_model_name_keeps_its_embedding_size(fresh_dsn: str) -> None:
    """Another vector size is welcome under another model name, refused under a name stored
    with a different size (its rows could not share that model's index)."""
    db = await open_db(fresh_dsn)
    await db.close()
    db = Database(fresh_dsn)
    await db.connect()
    try:
        assert await db.embedding_dim() == DIM
        await db.check_dim(384)  # a second model of another size may come
        await db.register_video(item("a", 2).transcript.video)
        await db.store_transcript(item("a", 2), asr_model="m", embed_model="e")
        wide = item("a", 2)
        wide = EmbeddedTranscript(wide.transcript, np.ones((2, 16), np.float32))
        with pytest.raises(ConfigError, match="'e' is stored with 8-d vectors but now gives 16-d"):
            await db.store_transcript(wide, asr_model="m", embed_model="e")
    finally:
        await db.close()


async def test_store_is_whole_and_a_second_store_does_not_duplicate(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """A stored video has all its rows; storing it again replaces them, never duplicates."""
    db = await open_db(fresh_dsn)
    try:
        await db.register_video(item("a", 3).transcript.video)
        await db.store_transcript(item("a", 3), asr_model="m", embed_model="e")
        await db.store_transcript(item("a", 3), asr_model="m", embed_model="e")
        rows = await conn.fetch("SELECT idx FROM segments WHERE video_id = 'a' ORDER BY idx")
        assert [r["idx"] for r in rows] == [0, 1, 2]
        video = await conn.fetchrow("SELECT status, segments, embed_model FROM videos WHERE id = 'a'")
        assert tuple(video) == ("done", 3, "e")
    finally:
        await db.close()


async def test_a_failed_store_leaves_nothing_half_written(fresh_dsn: str, conn: asyncpg.Connection) -> None:
    """If any row of a video is rejected, none of its rows are stored and it is not marked done."""
    db = await open_db(fresh_dsn)
    try:
        good = item("b", 3)
        await db.register_video(good.transcript.video)
        bad_vectors = good.vectors.copy()
        bad_vectors[2] = np.nan  # pgvector rejects NaN: the third row fails inside the COPY
        with pytest.raises(StoreError, match="store video b"):
            await db.store_transcript(
                EmbeddedTranscript(good.transcript, bad_vectors), asr_model="m", embed_model="e"
            )
        assert await conn.fetchval("SELECT count(*) FROM segments WHERE video_id = 'b'") == 0
        assert await conn.fetchval("SELECT status FROM videos WHERE id = 'b'") == "pending"
        await db.store_transcript(good, asr_model="m", embed_model="e")  # the pool is still usable
        assert await conn.fetchval("SELECT count(*) FROM segments WHERE video_id = 'b'") == 3
    finally:
        await db.close()


async def test_ledger_status_and_failures(fresh_dsn: str) -> None:
    """skip_reason, failures with reasons and attempt counts, and status totals agree."""
    db = await open_db(fresh_dsn)
    try:
        for vid in ("a", "b", "c"):
            await db.register_video(VideoRef(vid, f"http://x/{vid}"))
        await db.store_transcript(item("a", 2), asr_model="m", embed_model="e")
        await db.mark_failed("b", "download", "HTTP Error 404: Not Found")
        await db.register_video(VideoRef("b", "http://x/b"))  # a second attempt
        await db.mark_failed("b", "download", "HTTP Error 404: Not Found")
        assert [await db.skip_reason(v) for v in ("a", "b", "c", "zzz")] == [
            "already stored",
            None,
            None,
            None,
        ]
        report = await db.status()
        assert report["videos"] == {"done": 1, "failed": 1, "pending": 1}
        assert report["segments"] == 2
        assert report["failures"] == [
            {"video_id": "b", "reason": "HTTP Error 404: Not Found", "stage": "download", "attempts": 2}
        ]
    finally:
        await db.close()


async def test_search_orders_by_cosine_and_filters_by_speaker(fresh_dsn: str) -> None:
    """The nearest segment comes first with score ~1; a speaker filter keeps only that speaker."""
    db = await open_db(fresh_dsn)
    try:
        await db.register_video(VideoRef("a", "http://x/a", webpage_url="https://www.youtube.com/watch?v=a"))
        tagged = item("a", 4)
        segs = tuple(
            Segment(s.idx, s.start, s.end, s.text, speaker="Ann" if s.idx % 2 else "Bob")
            for s in tagged.transcript.segments
        )
        await db.store_transcript(
            EmbeddedTranscript(Transcript(tagged.transcript.video, segs, 8.0), tagged.vectors),
            asr_model="m",
            embed_model="e",
        )
        hits = await db.search(semantic(2), unit(2))
        assert hits[0].text == "a says 2" and hits[0].score == pytest.approx(1.0)
        assert hits[0].url == "https://www.youtube.com/watch?v=a&t=4s"
        only_ann = await db.search(SearchQuery("q", mode="semantic", speaker="Ann"), unit(2))
        assert {h.speaker for h in only_ann} == {"Ann"} and len(only_ann) == 2
    finally:
        await db.close()


async def test_unreachable_database_is_a_config_error_without_the_password() -> None:
    """Nothing listens on port 1: ConfigError names host/db and hides the password."""
    db = Database("postgresql://bob:hunter2@127.0.0.1:1/nowhere")
    with pytest.raises(ConfigError) as err:
        await db.connect(connect_timeout=5)
    assert "127.0.0.1/nowhere" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_timestamp_urls() -> None:
    """YouTube links get t=Ns; other links a #t= media fragment."""
    assert timestamp_url("https://youtu.be/x", 12.7) == "https://youtu.be/x?t=12s"
    assert timestamp_url("http://h/a.mp3#old", 3) == "http://h/a.mp3#t=3"


async def test_upcoming_and_live_are_recorded_then_taken_up(fresh_dsn: str, conn: asyncpg.Connection) -> None:
    """An upcoming or live-now entry is recorded as such (no attempt), shown by status as waiting,
    not skipped by a later run; listed as an ordinary video it becomes pending; done stays done."""
    db = await open_db(fresh_dsn)
    try:
        await db.register_video(VideoRef("p", "http://x/p", title="Premiere", live_status="is_upcoming"))
        await db.register_video(VideoRef("l", "http://x/l", title="Live", live_status="is_live"))
        await db.register_video(VideoRef("a", "http://x/a"))
        await db.store_transcript(item("a", 1), asr_model="m", embed_model="e")
        await db.register_video(VideoRef("a", "http://x/a", live_status="is_live"))
        rows = {r["id"]: (r["status"], r["attempts"]) for r in await conn.fetch("SELECT * FROM videos")}
        assert rows == {"p": ("upcoming", 0), "l": ("live", 0), "a": ("done", 1)}
        assert [await db.skip_reason(v) for v in ("p", "l")] == [None, None]
        report = await db.status()
        assert report["videos"] == {"done": 1, "failed": 0, "pending": 0}
        assert [(w["video_id"], w["status"], w["title"]) for w in report["waiting"]] == [
            ("p", "upcoming", "Premiere"),
            ("l", "live", "Live"),
        ]
        await db.register_video(VideoRef("p", "http://x/p", title="Premiere", live_status="was_live"))
        assert await conn.fetchrow("SELECT status, attempts FROM videos WHERE id = 'p'") == ("pending", 1)
        assert await db.failed_refs(include_pending=True) == [VideoRef("p", "http://x/p", "Premiere")]
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE videos SET status = 'bogus' WHERE id = 'p'")
    finally:
        await db.close()


async def test_listing_channel_name_id_and_date_are_stored_and_kept(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """register_video stores the listing's channel name, id and upload date; a later listing
    without them keeps them; the download's metadata fills what the listing lacked."""
    db = await open_db(fresh_dsn)
    try:
        ref = VideoRef("a", "http://x/a", upload_date="2025-12-30", channel_name="Chan", channel_id="UC1")
        await db.register_video(ref)
        await db.register_video(VideoRef("a", "http://x/a"))
        await db.register_video(VideoRef("b", "http://x/b"))
        await db.record_metadata("b", upload_date="2025-11-02", channel_name="Other", channel_id="UC2")
        rows = {
            r["id"]: (str(r["upload_date"]), r["channel_name"], r["channel_id"])
            for r in await conn.fetch("SELECT id, upload_date, channel_name, channel_id FROM videos")
        }
        assert rows == {"a": ("2025-12-30", "Chan", "UC1"), "b": ("2025-11-02", "Other", "UC2")}
    finally:
        await db.close()


async def test_status_narrows_to_one_channel(fresh_dsn: str) -> None:
    """status(channel=URL) counts videos, segments, failures and waiting videos of that channel only."""
    db = await open_db(fresh_dsn)
    one, two = "https://www.youtube.com/@one", "http://127.0.0.1:9/feed.xml"
    try:
        for url in (one, two):
            await db.register_channel(url)
        await db.register_video(VideoRef("a", "http://x/a", channel=one))
        await db.store_transcript(item("a", 3), asr_model="m", embed_model="e")
        await db.register_video(VideoRef("b", "http://x/b", channel=one))
        await db.mark_failed("b", "download", "HTTP Error 404: Not Found")
        await db.register_video(VideoRef("c", "http://x/c", channel=two))
        await db.store_transcript(item("c", 2), asr_model="m", embed_model="e")
        await db.register_video(VideoRef("d", "http://x/d", channel=two, live_status="is_upcoming"))
        mine = await db.status(one)
        assert mine["videos"] == {"done": 1, "failed": 1, "pending": 0}
        assert (mine["segments"], [f["video_id"] for f in mine["failures"]], mine["waiting"]) == (
            3,
            ["b"],
            [],
        )
        theirs = await db.status(channel=two)
        assert theirs["videos"] == {"done": 1, "failed": 0, "pending": 0}
        assert (theirs["segments"], theirs["failures"]) == (2, [])
        assert [w["video_id"] for w in theirs["waiting"]] == ["d"]
        everything = await db.status()
        assert everything["videos"] == {"done": 2, "failed": 1, "pending": 0} and everything["segments"] == 5
        assert (await db.status("https://nowhere"))["videos"] == {"done": 0, "failed": 0, "pending": 0}
    finally:
        await db.close()
