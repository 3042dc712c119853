"""Hybrid search on real PostgreSQL + pgvector: keyword and vector rankings, fusion, filters, context.

Vectors here are chosen by hand so that the semantic ranking is known; the keyword ranking is
PostgreSQL's own full-text search over the real text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import asyncpg
import numpy as np
import pytest

from ytingest.db.database import Database
from ytingest.items import EmbeddedTranscript, Segment, Transcript, VideoRef
from ytingest.search import SearchQuery

DIM = 8
TEXTS = {
    "talk": [
        "Welcome back to the show about databases.",
        "Version 0.8 of pgvector added iterative index scans.",
        "We stretch and fold the dough four times.",
        "Fold it once, then stretch it gently.",
        "Thanks for listening, see you next week.",
    ],
    "bake": [
        "Sourdough needs a lively starter.",
        "Stretch and fold every half an hour.",
        "Bake with the lid on for twenty minutes.",
    ],
}
CHANNELS = {"talk": "https://www.youtube.com/@talk", "bake": "https://example.org/bake.rss"}
DATES = {"talk": "2026-03-01", "bake": "2026-06-15"}


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    return v


@pytest.fixture
async def db(fresh_dsn: str) -> AsyncIterator[Database]:
    """Two videos on two channels, with upload dates and speakers; segment i of 'talk' points along
    axis i, 'bake' along axes 5..7."""
    database = Database(fresh_dsn)
    await database.connect()
    await database.migrate(DIM)
    for n, (vid, texts) in enumerate(TEXTS.items()):
        await database.register_channel(CHANNELS[vid])
        webpage = f"https://www.youtube.com/watch?v={vid}" if vid == "talk" else f"https://example.org/{vid}"
        ref = VideoRef(
            vid, f"https://media.example.org/{vid}.m4a", vid.title(), 60.0, CHANNELS[vid], webpage, DATES[vid]
        )
        await database.register_video(ref)
        segs = tuple(
            Segment(i, 10.0 * i, 10.0 * i + 9, t, speaker="Ann" if i % 2 else "Bob")
            for i, t in enumerate(texts)
        )
        vecs = np.stack([unit(5 * n + i) for i in range(len(texts))])
        await database.store_transcript(
            EmbeddedTranscript(Transcript(ref, segs, 60.0), vecs), asr_model="m", embed_model="e"
        )
    yield database
    await database.close()


async def test_keyword_finds_a_rare_term_that_the_vectors_rank_last(db: Database) -> None:
    """'pgvector 0.8' is talk#1; the query vector points at talk#4. Semantic puts talk#1 low,
    keyword puts it first, and hybrid (fusion of both) puts it first too."""
    vector = unit(4)
    semantic = await db.search(SearchQuery("pgvector 0.8", mode="semantic", limit=8), vector)
    keyword = await db.search(SearchQuery("pgvector 0.8", mode="keyword"), None)
    hybrid = await db.search(SearchQuery("pgvector 0.8"), vector)
    assert (semantic[0].video_id, semantic[0].idx) == ("talk", 4)
    assert [(h.video_id, h.idx) for h in keyword] == [("talk", 1)]
    assert (hybrid[0].video_id, hybrid[0].idx) == ("talk", 1)
    assert 0 < hybrid[0].score <= 1.0
    assert hybrid[0].url == "https://www.youtube.com/watch?v=talk&t=10s"
    assert hybrid[0].media_url == "https://media.example.org/talk.m4a"


async def test_hybrid_fuses_only_keyword_hits_with_every_word(db: Database) -> None:
    """'welcome dough listening': keyword mode lists the three segments with one word each, but none
    has all three, so they are no evidence: hybrid keeps the semantic order."""
    q = "welcome dough listening"
    keyword = await db.search(SearchQuery(q, mode="keyword"), None)
    assert {(h.video_id, h.idx) for h in keyword} == {("talk", 0), ("talk", 2), ("talk", 4)}
    semantic = await db.search(SearchQuery(q, mode="semantic", limit=5), unit(1))
    hybrid = await db.search(SearchQuery(q, limit=5), unit(1))
    assert [(h.video_id, h.idx) for h in hybrid] == [(h.video_id, h.idx) for h in semantic]


async def test_quoted_phrases_match_exactly_in_every_mode(db: Database) -> None:
    """'"stretch and fold"' matches the two segments with those words in that order, not the one
    that says 'Fold it once, then stretch'; in semantic mode the phrase filters the ranking too."""
    expected = {("talk", 2), ("bake", 1)}
    for mode in ("keyword", "hybrid", "semantic"):
        hits = await db.search(SearchQuery('"stretch and fold"', mode=mode), unit(3))  # type: ignore[arg-type]
        assert {(h.video_id, h.idx) for h in hits} == expected, mode
    unquoted = await db.search(SearchQuery("stretch fold", mode="keyword"), None)
    assert ("talk", 3) in {(h.video_id, h.idx) for h in unquoted}
    partial = await db.search(SearchQuery('"arter"', mode="semantic"), unit(0))
    assert partial == []  # whole words: "arter" is not "starter"
    hyphen = await db.search(SearchQuery('"lively-starter"', mode="semantic"), unit(5))
    assert [(h.video_id, h.idx) for h in hyphen] == [("bake", 0)]  # a hyphen matches a space


async def test_exclusions_hold_in_every_mode(db: Database) -> None:
    """-word and -"phrase" drop segments in semantic, keyword and hybrid alike; a stop word alone
    excludes nothing."""
    for mode in ("keyword", "hybrid", "semantic"):
        without = await db.search(SearchQuery("stretch fold -dough", mode=mode, limit=20), unit(2))  # type: ignore[arg-type]
        keys = {(h.video_id, h.idx) for h in without}
        assert ("talk", 2) not in keys and keys, mode
        if mode == "keyword":
            assert keys == {("talk", 3), ("bake", 1)}
        no_phrase = await db.search(
            SearchQuery('stretch fold -"stretch and fold"', mode=mode, limit=20), unit(2)
        )  # type: ignore[arg-type]
        assert not {("talk", 2), ("bake", 1)} & {(h.video_id, h.idx) for h in no_phrase}, mode
    stop = await db.search(SearchQuery("fold -the", mode="keyword"), None)
    assert {(h.video_id, h.idx) for h in stop} == {
        (h.video_id, h.idx) for h in await db.search(SearchQuery("fold", mode="keyword"), None)
    }


async def test_keyword_ranks_segments_with_every_word_above_those_with_some(db: Database) -> None:
    hits = await db.search(SearchQuery("lid twenty minutes dough", mode="keyword"), None)
    assert [(h.video_id, h.idx) for h in hits][:2] == [("bake", 2), ("talk", 2)]
    every = await db.search(SearchQuery("bake lid twenty", mode="keyword"), None)
    assert (every[0].video_id, every[0].idx) == ("bake", 2)


async def test_filters_apply_in_every_mode(db: Database) -> None:
    """Channel, video, speaker and upload-date filters narrow the semantic, keyword and hybrid lists."""
    cases = {
        "channel": (dict(channel=CHANNELS["bake"]), lambda h: h.video_id == "bake"),
        "video": (dict(video="talk"), lambda h: h.video_id == "talk"),
        "speaker": (dict(speaker="Ann"), lambda h: h.speaker == "Ann"),
        "since": (dict(since=date(2026, 6, 1)), lambda h: h.upload_date == "2026-06-15"),
        "until": (dict(until=date(2026, 3, 31)), lambda h: h.upload_date == "2026-03-01"),
    }
    for mode in ("semantic", "keyword", "hybrid"):
        for name, (options, holds) in cases.items():
            q = SearchQuery("stretch fold dough starter", mode=mode, limit=20, **options)  # type: ignore[arg-type]
            hits = await db.search(q, unit(2))
            assert hits, (mode, name)
            assert all(holds(h) for h in hits), (mode, name, hits)
    window = SearchQuery("fold", mode="keyword", since=date(2026, 7, 1))
    assert await db.search(window, None) == []
    undated = VideoRef("undated", "https://x/u.m4a", "Undated", 9.0, CHANNELS["talk"], "https://x/u")
    await db.register_video(undated)
    await db.store_transcript(
        EmbeddedTranscript(Transcript(undated, (Segment(0, 0.0, 9.0, "fold again"),), 9.0), unit(6)[None, :]),
        asr_model="m",
        embed_model="e",
    )
    assert ("undated", 0) in {
        (h.video_id, h.idx) for h in await db.search(SearchQuery("fold", mode="keyword"), None)
    }
    dated_only = await db.search(SearchQuery("fold", mode="keyword", until=date(2030, 1, 1)), None)
    assert "undated" not in {h.video_id for h in dated_only}  # a date filter leaves undated videos out


async def test_min_score_and_limit(db: Database) -> None:
    hits = await db.search(SearchQuery("q", mode="semantic", limit=20, min_score=0.5), unit(1))
    assert [(h.video_id, h.idx) for h in hits] == [("talk", 1)]  # the only vector with cosine >= 0.5
    fused = await db.search(SearchQuery("pgvector", limit=20, min_score=0.9), unit(1))
    assert [(h.video_id, h.idx) for h in fused] == [("talk", 1)]  # first in both lists: 1.0
    assert len(await db.search(SearchQuery("q", mode="semantic", limit=3), unit(1))) == 3


async def test_hits_carry_their_neighbours_for_context(db: Database) -> None:
    hits = await db.search(SearchQuery("iterative index scans", mode="keyword"), None)
    assert hits[0].before == TEXTS["talk"][0] and hits[0].after == TEXTS["talk"][2]
    first = await db.search(SearchQuery("lively starter", mode="keyword"), None)
    assert first[0].before == "" and first[0].after == TEXTS["bake"][1]
    assert first[0].channel == CHANNELS["bake"] and first[0].upload_date == "2026-06-15"


async def test_hostile_query_text_is_only_text(db: Database) -> None:
    """Quotes, SQL and tsquery operators in a query are data, never syntax."""
    for text in ("'; DROP TABLE segments; --", 'a & b | !c <-> "', "%_\\"):
        for mode in ("keyword", "hybrid"):
            await db.search(SearchQuery(text, mode=mode), unit(0))  # type: ignore[arg-type]
    assert len(await db.search(SearchQuery("q", mode="semantic", limit=50), unit(0))) == 8


async def test_full_text_index_is_built_after_the_rows_and_used(
    db: Database, conn: asyncpg.Connection
) -> None:
    assert await db.ensure_search_index() is True
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN SELECT idx FROM segments"
                " WHERE to_tsvector(ts_config, text) @@ websearch_to_tsquery('english', 'dough')"
            )
        )
    assert "segments_text_fts" in plan
    assert [h.idx for h in await db.search(SearchQuery("dough", mode="keyword"), None)] == [2]


async def test_videos_and_channels_listings(db: Database) -> None:
    videos = await db.videos()
    assert [v["id"] for v in videos] == ["bake", "talk"]  # newest upload first
    assert videos[0]["upload_date"] == "2026-06-15" and videos[0]["status"] == "done"
    assert [v["id"] for v in await db.videos(channel=CHANNELS["talk"])] == ["talk"]
    channels = {c["url"]: c for c in await db.channels()}
    assert set(channels) == set(CHANNELS.values())
    assert channels[CHANNELS["talk"]]["done"] == 1 and channels[CHANNELS["talk"]]["pending"] == 0
    assert channels[CHANNELS["talk"]]["audio_hours"] == pytest.approx(60 / 3600, abs=1e-3)


async def test_channels_listing_has_names_counts_and_newest_upload(db: Database) -> None:
    """Each channel with the uploader's name (from the download's metadata; null when none said),
    done/failed/pending counts, hours of audio, the newest upload date and the last run."""
    await db.record_metadata("talk", upload_date=None, channel_name="The Talk Show", channel_id="UC1")
    later = VideoRef(
        "talk2", "https://media.example.org/talk2.m4a", "Talk 2", 60.0, CHANNELS["talk"], "", "2026-04-02"
    )
    await db.register_video(later)
    await db.mark_failed("talk2", "download", "HTTP Error 404: Not Found", permanent=True)
    waiting = VideoRef("talk3", "https://media.example.org/talk3.m4a", "Talk 3", 60.0, CHANNELS["talk"])
    await db.register_video(waiting)
    channels = {c["url"]: c for c in await db.channels()}
    talk, bake = channels[CHANNELS["talk"]], channels[CHANNELS["bake"]]
    assert {k: talk[k] for k in ("name", "done", "failed", "pending", "latest_upload")} == {
        "name": "The Talk Show",
        "done": 1,
        "failed": 1,
        "pending": 1,
        "latest_upload": "2026-04-02",
    }
    assert talk["audio_hours"] == pytest.approx(60 / 3600, abs=1e-3)
    assert talk["last_run"] is not None and date.fromisoformat(talk["last_run"][:10])
    assert (bake["name"], bake["latest_upload"], bake["done"]) == (None, "2026-06-15", 1)
