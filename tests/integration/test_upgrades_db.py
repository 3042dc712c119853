"""Many embedding models in one database, vectors replaced in place, and videos deleted (real PostgreSQL)."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest

from ytingest.db.database import Database
from ytingest.db.schema import MIGRATIONS
from ytingest.db.search import _SEMANTIC
from ytingest.errors import ConfigError, StoreError
from ytingest.items import EmbeddedTranscript, Segment, Transcript, VideoRef
from ytingest.search import SearchQuery


def unit(i: int, dim: int) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i % dim] = 1.0
    return v


def item(
    vid: str, n: int, dim: int, *, channel: str = "http://ch", speaker: str | None = None
) -> EmbeddedTranscript:
    segs = tuple(Segment(i, i * 2.0, i * 2.0 + 1.5, f"{vid} says {i}", speaker=speaker) for i in range(n))
    ref = VideoRef(vid, f"http://x/{vid}", title=vid, webpage_url=f"http://x/{vid}", channel=channel)
    return EmbeddedTranscript(Transcript(ref, segs, n * 2.0), np.stack([unit(i, dim) for i in range(n)]))


def semantic(model: str | None) -> SearchQuery:
    return SearchQuery("q", mode="semantic", limit=3, embed_model=model)


async def opened(dsn: str, dim: int = 8) -> Database:
    db = Database(dsn)
    await db.connect()
    await db.migrate(dim)
    return db


async def stored(db: Database, it: EmbeddedTranscript, model: str) -> None:
    await db.register_channel(it.transcript.video.channel)
    await db.register_video(it.transcript.video)
    await db.store_transcript(it, asr_model="asr", embed_model=model)


async def rows(conn: asyncpg.Connection) -> list[tuple[str, int, str, str, int]]:
    got = await conn.fetch(
        "SELECT video_id, idx, text, embed_model, vector_dims(embedding) AS d FROM segments ORDER BY 1, 2"
    )
    return [tuple(r) for r in got]


async def test_an_old_database_migrates_keeping_its_rows_under_their_model(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """A database built before migration 12 keeps every row; its model is registered at its size,
    and a search under that model's name finds the same segment as before."""
    await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    await conn.execute("CREATE TABLE ytingest_meta (key text PRIMARY KEY, value text NOT NULL)")
    for sql in MIGRATIONS[:11]:
        await conn.execute(sql.format(dim=8))
    await conn.execute(
        "INSERT INTO ytingest_meta VALUES ('schema_version', '11'), ('embedding_dim', '8');"
        "INSERT INTO videos (id, url, status) VALUES ('old', 'http://x/old', 'done');"
        "INSERT INTO segments (video_id, idx, start_s, end_s, text, embedding, embed_model)"
        " SELECT 'old', i, i, i + 1, 'old says ' || i,"
        "  ('[' || array_to_string(array(SELECT (j = i)::int FROM generate_series(0, 7) j), ',')"
        "  || ']')::vector,"
        "  'legacy' FROM generate_series(0, 3) i"
    )
    before = await rows(conn)
    db = await opened(fresh_dsn)
    try:
        assert await rows(conn) == before and len(before) == 4
        assert [tuple(r) for r in await conn.fetch("SELECT name, dim FROM embed_models")] == [("legacy", 8)]
        hits = await db.search(semantic("legacy"), unit(2, 8))
        assert hits[0].text == "old says 2"
    finally:
        await db.close()


async def test_two_models_of_two_sizes_share_a_database_and_search_apart(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """An 8-d and a 16-d model each store, get an index of their own, and a query is compared only
    with its own model's vectors; a model with no vectors is named in a one-line error."""
    db = await opened(fresh_dsn)
    try:
        await stored(db, item("a", 4, 8), "small")
        await stored(db, item("b", 4, 16), "wide")
        assert await db.ensure_search_index() is True
        indexes = {
            r[0] for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'segments'")
        }
        assert {"segments_embedding_hnsw_1", "segments_embedding_hnsw_2"} <= indexes
        async with conn.transaction():  # the search's own query reaches the model's own index
            await conn.execute("SET LOCAL enable_seqscan = off")
            sql = "EXPLAIN " + _SEMANTIC.format(model="'wide'", vector="(s.embedding::vector(16))")
            filters = (None, None, None, None, None, [], "")
            plan = "\n".join(r[0] for r in await conn.fetch(sql, str(unit(3, 16).tolist()), 5, *filters))
        assert "segments_embedding_hnsw_2" in plan, plan
        small = await db.search(semantic("small"), unit(1, 8))
        wide = await db.search(semantic("wide"), unit(3, 16))
        assert {h.video_id for h in small} == {"a"} and small[0].text == "a says 1"
        assert {h.video_id for h in wide} == {"b"} and wide[0].text == "b says 3"
        assert (await db.search(semantic(None), unit(3, 16)))[0].text == "b says 3"  # by its size
        with pytest.raises(ConfigError, match="no stored vectors are of 'other'.*reprocess"):
            await db.search(semantic("other"), unit(0, 8))
        report = await db.embed_models_report()
        assert [(m["embed_model"], m["dim"], m["video_ids"]) for m in report] == [
            ("small", 8, ["a"]),
            ("wide", 16, ["b"]),
        ]
    finally:
        await db.close()


async def test_replacing_vectors_swaps_one_videos_model_and_forgets_an_unused_one(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """A video's vectors move to the new model in place (texts and other videos untouched); the
    old model, used by nothing then, is forgotten; segments changed meanwhile are refused."""
    db = await opened(fresh_dsn)
    try:
        await stored(db, item("a", 3, 8), "old")
        await stored(db, item("b", 2, 8), "keep")
        before = await rows(conn)
        texts = await db.segment_texts("a")
        vectors = np.stack([unit(i + 5, 16) for i, _ in texts])
        await db.replace_vectors("a", [i for i, _ in texts], vectors, embed_model="new")
        after = await rows(conn)
        assert [r[:3] for r in after] == [r[:3] for r in before]  # same segments, same texts
        assert {(r[0], r[3], r[4]) for r in after} == {("a", "new", 16), ("b", "keep", 8)}
        assert await conn.fetchval("SELECT embed_model FROM videos WHERE id = 'a'") == "new"
        assert await db.prune_embed_models() == ["old"]
        assert (await db.search(semantic("new"), unit(6, 16)))[0].text == "a says 1"
        with pytest.raises(StoreError, match="segments changed"):
            await db.replace_vectors("a", [0, 1], vectors[:2], embed_model="new")
        assert await rows(conn) == after
    finally:
        await db.close()


async def test_deleting_a_video_takes_its_rows_claims_checkpoints_and_own_voices(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """``delete_videos(video=)`` removes the video's segments, ledger row, claims and checkpoints, and
    the channel voices heard only in it; another video and its voices stay whole."""
    db = await opened(fresh_dsn)
    try:
        await stored(db, item("a", 3, 8, speaker="unknown-1"), "m")
        await stored(db, item("b", 2, 8, speaker="unknown-2"), "m")
        await conn.execute(
            "INSERT INTO unknown_speakers (label, embedding, model, weight, channel) VALUES"
            " ('unknown-1', '[1,0]', 'g', 1, 'http://ch'), ('unknown-2', '[0,1]', 'g', 1, 'http://ch')"
        )
        await conn.execute("INSERT INTO claims (video_id, worker) VALUES ('a', 'w1')")
        keep = [r for r in await rows(conn) if r[0] == "b"]
        checkpoints = await conn.fetchval("SELECT to_regclass('checkpoints') IS NOT NULL")
        if checkpoints:  # the checkpoints migration (a window of "a" re-transcribed, not yet stored)
            await conn.execute(
                "INSERT INTO checkpoints (video_id, window_index, asr_model, embed_model, last, seconds,"
                " language, segments, voices, dim, vectors) VALUES ('a', 0, 'x', 'm', false, 1, 'en',"
                " '[]', '[]', 8, '')"
            )
        gone = await db.delete_videos(video="a")
        assert (gone.videos, gone.segments, gone.voices) == (["a"], 3, ["http://ch unknown-1"])
        assert await rows(conn) == keep
        assert [r[0] for r in await conn.fetch("SELECT id FROM videos")] == ["b"]
        assert await conn.fetchval("SELECT count(*) FROM claims") == 0
        if checkpoints:
            assert await conn.fetchval("SELECT count(*) FROM checkpoints") == 0
        assert [r[0] for r in await conn.fetch("SELECT label FROM unknown_speakers")] == ["unknown-2"]
        assert await conn.fetchval("SELECT url FROM channels") == "http://ch"  # b still has it
        whole = await db.delete_videos(channel="http://ch")
        assert (whole.videos, whole.channel) == (["b"], "http://ch")
        for table in (
            "segments",
            "videos",
            "channels",
            "unknown_speakers",
            "unknown_numbers",
            "embed_models",
        ):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    finally:
        await db.close()
