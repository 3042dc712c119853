"""The database side of hostile input: stored URLs lose their userinfo (migration 11 and every new
row), and a NUL or lone surrogate that reaches an insert path is dropped instead of stopping it."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
import pytest

import ytingest.db.schema as schema
from tests.integration.test_video_language import item, open_db, store, unit
from ytingest.items import Segment, VideoRef, Voiceprint
from ytingest.search import SearchQuery

pytestmark = pytest.mark.slow

SECRET = "S3CRETPASS"
FEED = f"http://user:{SECRET}@127.0.0.1:9/feed.xml"
PUBLIC = "http://127.0.0.1:9/feed.xml"


async def test_migration_11_strips_userinfo_from_stored_urls(
    fresh_dsn: str, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows stored before 11 with a password in the channel and video URLs (the channel also stored
    once without it, with anonymous voices under both): after it, no URL column holds the password,
    the two channels are one and every video and voice belongs to it."""
    full = schema.MIGRATIONS
    monkeypatch.setattr(schema, "MIGRATIONS", full[:10])
    db = await open_db(fresh_dsn)
    try:
        for url in (FEED, PUBLIC):
            await conn.execute("INSERT INTO channels (url, last_run) VALUES ($1, now())", url)
        await conn.execute(
            "INSERT INTO videos (id, channel, url, webpage_url) VALUES"
            " ('a', $1, 'https://u:S3CRETPASS@h/a.mp3', 'https://u:S3CRETPASS@h/a?x=@y'),"
            " ('b', $2, 'http://h/b.mp3', '')",
            FEED,
            PUBLIC,
        )
        voices = ((FEED, "unknown-1", 2.0), (PUBLIC, "unknown-1", 1.0), (FEED, "unknown-2", 1.0))
        for channel, label, weight in voices:
            await conn.execute(
                "INSERT INTO unknown_speakers (label, embedding, model, weight, channel)"
                " VALUES ($1, $2::vector, 'm', $3, $4)",
                label,
                str(unit(0).tolist()),
                weight,
                channel,
            )
        await conn.execute("INSERT INTO unknown_numbers VALUES ($1, 2), ($2, 1)", FEED, PUBLIC)
    finally:
        await db.close()
    monkeypatch.setattr(schema, "MIGRATIONS", full)
    db = await open_db(fresh_dsn)
    await db.close()
    assert [r["url"] for r in await conn.fetch("SELECT url FROM channels")] == [PUBLIC]
    rows = await conn.fetch("SELECT id, channel, url, webpage_url FROM videos ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("a", PUBLIC, "https://h/a.mp3", "https://h/a?x=@y"),
        ("b", PUBLIC, "http://h/b.mp3", ""),
    ]
    kept = await conn.fetch("SELECT channel, label, weight FROM unknown_speakers ORDER BY label")
    assert [tuple(r) for r in kept] == [(PUBLIC, "unknown-1", 1.0), (PUBLIC, "unknown-2", 1.0)]
    assert [tuple(r) for r in await conn.fetch("SELECT * FROM unknown_numbers")] == [(PUBLIC, 2)]


async def test_new_rows_keep_no_password_and_filters_accept_the_credentialed_url(fresh_dsn: str) -> None:
    """register_channel/register_video store the public URLs; status, videos and search filtered
    by the URL with its password find the channel all the same."""
    db = await open_db(fresh_dsn)
    try:
        await db.register_channel(FEED)
        it = item("a", 1, channel=FEED)
        ref = replace(it.transcript.video, url=f"http://u:{SECRET}@x/a", fetch_url=f"http://u:{SECRET}@x/a")
        it = replace(it, transcript=replace(it.transcript, video=ref))
        await store(db, it)
        assert [c["url"] for c in await db.channels()] == [PUBLIC]
        [video] = await db.videos(channel=FEED)
        assert (video["channel"], video["url"]) == (PUBLIC, "http://x/a")
        assert (await db.status(channel=FEED))["videos"]["done"] == 1
        hits = await db.search(SearchQuery("bread", mode="keyword", channel=FEED), None)
        assert [h.channel for h in hits] == [PUBLIC]
    finally:
        await db.close()


async def test_a_nul_anywhere_is_dropped_not_fatal(fresh_dsn: str, conn: asyncpg.Connection) -> None:
    """A NUL or lone surrogate in a title, a failure reason, a segment's text, a speaker, a warning,
    a voiceprint's name: all stored, without them."""
    db = await open_db(fresh_dsn)
    try:
        await db.register_video(VideoRef("f", "http://x/f", title="bad\x00title\ud800"))
        await db.mark_failed("f", "download", "ERROR: \x00broken\x1b[31m")
        it = item("a", 1, warning="warn\x00ing")
        seg = Segment(0, 0.0, 1.0, "bread\x00 and \udc80butter", speaker="Ada\x00")
        it = replace(it, transcript=replace(it.transcript, segments=(seg,)))
        await store(db, it)
        await db.save_voiceprints([Voiceprint("Eve\x00", unit(1), "m", {})], keep=["Eve\x00"])
        rows = await conn.fetch("SELECT id, title, error, warning FROM videos ORDER BY id")
        assert [tuple(r) for r in rows] == [
            ("a", "A", None, "warning"),
            ("f", "badtitle", "ERROR: broken", None),
        ]
        assert await conn.fetchval("SELECT text || '|' || speaker FROM segments") == "bread and butter|Ada"
        assert await conn.fetchval("SELECT name FROM voiceprints") == "Eve"
    finally:
        await db.close()
