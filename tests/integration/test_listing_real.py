"""Listing flags end to end: real yt-dlp lists the local channel (RSS ``pubDate`` = 2026-01-01 minus
n days for the n-th episode), real models transcribe, real PostgreSQL stores."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import asyncpg
import pytest
import structlog

from ytingest import Engine, Settings
from ytingest.testing import ChannelServer, sample_episodes

pytestmark = pytest.mark.slow


async def test_since_and_until_select_episodes_by_pubdate(
    tmp_path: Path, fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """--since 2025-12-30 --until 2025-12-31 stores the 2nd and 3rd of four episodes, with their dates."""
    settings = Settings(ytingest_home=tmp_path, database_url=fresh_dsn)
    async with ChannelServer(episodes=sample_episodes()[:4]) as channel:
        with structlog.testing.capture_logs() as events:
            async with Engine(settings) as engine:
                summary = await engine.stream(
                    channel.feed_url, since=date(2025, 12, 30), until=date(2025, 12, 31)
                )
    assert (summary.done, summary.failed, summary.skipped) == (2, 0, 2)
    skipped = {e["video_id"]: e["reason"] for e in events if e["event"] == "video_skipped"}
    assert skipped == {"ep01-vectors": "after until", "ep04-bicycle": "before since"}
    rows = await conn.fetch("SELECT id, status, upload_date, channel FROM videos ORDER BY id")
    assert [(r["id"], r["status"], r["upload_date"], r["channel"]) for r in rows] == [
        ("ep02-sleep", "done", date(2025, 12, 31), channel.feed_url),
        ("ep03-garden", "done", date(2025, 12, 30), channel.feed_url),
    ]


async def test_new_only_lists_up_to_the_stored_ones_and_stores_the_new(
    tmp_path: Path, fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """After 2 episodes are added on top, --new-only (streak 2) lists 4 of 5 entries and stores the 2."""
    old = sample_episodes()[:3]
    spare = sample_episodes()[3:5]
    new = [dataclasses.replace(ep, id=f"new-{n}", title=f"New {n}") for n, ep in enumerate(spare, 1)]
    settings = Settings(ytingest_home=tmp_path, database_url=fresh_dsn, new_only_streak=2)
    async with ChannelServer(episodes=old) as channel:
        async with Engine(settings) as engine:
            first = await engine.stream(channel.feed_url, new_only=True)
            assert (first.done, first.skipped) == (3, 0)
            channel.episodes = [*new, *old]  # the feed is built per request
            with structlog.testing.capture_logs() as events:
                second = await engine.stream(channel.feed_url, new_only=True)
    assert (second.done, second.failed, second.skipped) == (2, 0, 2)
    done = next(e for e in events if e["event"] == "discovery_done")
    assert (done["listed"], done["queued"]) == (4, 2)  # the third old episode is never read
    assert [e["reason"] for e in events if e["event"] == "listing_stopped"] == ["new_only"]
    stored = {r["id"]: r["upload_date"] for r in await conn.fetch("SELECT id, upload_date FROM videos")}
    assert stored == {
        "new-1": date(2026, 1, 1),
        "new-2": date(2025, 12, 31),
        "ep01-vectors": date(2026, 1, 1),  # dates of the first run (the feed moved them down since)
        "ep02-sleep": date(2025, 12, 31),
        "ep03-garden": date(2025, 12, 30),
    }
    assert await conn.fetchval("SELECT count(*) FROM videos WHERE status = 'done'") == 5
