"""What a run takes from a listing: a channel's tabs, --limit, --since/--until, --new-only, upcoming
and live entries, on yt-dlp's real YouTube flat-playlist entry shapes (read from its ``_tab.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from ytingest import Settings
from ytingest.errors import ConfigError, DiscoverError
from ytingest.items import VideoRef
from ytingest.pipeline.context import RunContext
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.discover import Listing, run_discovery
from ytingest.ytdlp.lister import entry_to_ref
from ytingest.ytdlp.listing import (
    listing_urls,
    missing_tab,
    newest_first,
    outside,
    parse_tabs,
    upload_day_of,
)

CHANNEL = "https://www.youtube.com/@chan"
# yt-dlp's message for a tab a channel lacks (youtube/_tab.py), as the discoverer reports it
NO_STREAMS = "cannot list x: [youtube:tab] @chan: This channel does not have a streams tab"


def yt_entry(
    vid: str,
    day: str | None = None,
    *,
    live_status: str | None = None,
    duration: int | None = 300,
    short: bool = False,
) -> dict[str, Any]:
    """A flat entry as yt-dlp's YoutubeTabIE gives it (``_extract_video``), with the playlist-level
    fields YoutubeDL copies onto each entry; ``day`` is the date that ``approximate_date`` gives."""
    stamp = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) if day else None
    return {
        "_type": "url",
        "ie_key": "Youtube",
        "id": vid,
        "url": f"https://www.youtube.com/{'shorts/' if short else 'watch?v='}{vid}",
        "title": f"video {vid}",
        "description": None,
        "duration": duration,
        "channel_id": None,  # a channel's own tab leaves the byline out
        "channel": None,
        "uploader": None,
        "timestamp": stamp,
        "upload_date": day.replace("-", "") if day else None,
        "release_timestamp": 1767312000 if live_status == "is_upcoming" else None,
        "live_status": live_status,
        "playlist_channel": "The Channel",
        "playlist_channel_id": "UCabcdefghijklmnopqrstuv",
        "playlist_uploader": "The Channel",
    }


@dataclass
class TabDiscoverer:
    """Serves a listing per URL (a missing one raises yt-dlp's "no such tab"); counts what each
    listing handed out and whether it was closed (a closed yt-dlp child is killed)."""

    listings: dict[str, list[dict[str, Any]]]
    pulled: dict[str, int] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)
    fail: dict[str, str] = field(default_factory=dict)

    async def discover(self, url: str) -> AsyncGenerator[VideoRef, None]:
        if url in self.fail:
            raise DiscoverError(self.fail[url])
        self.pulled[url] = 0
        try:
            for entry in self.listings[url]:
                ref = entry_to_ref(entry, url)
                assert ref is not None
                self.pulled[url] += 1
                yield ref
        finally:
            self.closed.append(url)


@dataclass
class Ledger:
    """The ledger calls discovery makes: stored ids, and every registered ref."""

    done: set[str] = field(default_factory=set)
    registered: list[VideoRef] = field(default_factory=list)

    async def skip_reason(self, video_id: str) -> str | None:
        return "already stored" if video_id in self.done else None

    async def register_video(self, ref: VideoRef) -> None:
        self.registered.append(ref)


async def discover(
    tmp_path: Path, source: TabDiscoverer, url: str = CHANNEL, *, ledger: Ledger | None = None, **kw: Any
) -> tuple[list[VideoRef], list[Any], RunContext]:
    """Run discovery; return the refs queued, the log events and the run context."""
    knobs = {k: kw.pop(k) for k in ("new_only_streak",) if k in kw}  # the rest is the Listing
    settings = Settings(ytingest_home=tmp_path, **knobs)
    ctx = RunContext(settings, ledger or Ledger(), metrics_for(PIPELINE, settings))  # type: ignore[arg-type]
    out: asyncio.Queue[VideoRef | None] = asyncio.Queue()
    with structlog.testing.capture_logs() as events:
        await run_discovery(ctx, source, url, out, Listing(**kw))
    queued = []
    while (ref := out.get_nowait()) is not None:
        queued.append(ref)
    return queued, events, ctx


def skipped(events: list[dict[str, Any]]) -> dict[str, str]:
    return {e["video_id"]: e["reason"] for e in events if e["event"] == "video_skipped"}


# ---- the pure parts -------------------------------------------------------------------------


def test_tabs_parse_in_order_and_unknown_names_are_config_errors() -> None:
    """TABS is a comma list kept in order without repeats; an unknown or empty one is refused."""
    assert parse_tabs("videos,streams") == ("videos", "streams")
    assert parse_tabs(" Shorts , videos,shorts ") == ("shorts", "videos")
    assert parse_tabs(["streams"]) == ("streams",)
    with pytest.raises(ConfigError, match="unknown tab 'clips'.*videos, streams, shorts"):
        parse_tabs("videos,clips")
    with pytest.raises(ConfigError, match="names no tab"):
        parse_tabs(" , ")
    assert Listing(tabs="streams,videos").tabs == ("streams", "videos")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Listing(tabs=("live",))


def test_a_bare_channel_url_becomes_its_tabs_in_order() -> None:
    """/@name, /channel/UC…, /c/name and /user/name are listed tab by tab; the query is kept."""
    tabs = ("videos", "streams")
    assert listing_urls("https://www.youtube.com/@chan", tabs) == (
        "https://www.youtube.com/@chan/videos",
        "https://www.youtube.com/@chan/streams",
    )
    assert listing_urls("https://youtube.com/channel/UCabc/", ("shorts", "videos")) == (
        "https://youtube.com/channel/UCabc/shorts",
        "https://youtube.com/channel/UCabc/videos",
    )
    assert listing_urls("https://m.youtube.com/c/Name?si=x", ("videos",)) == (
        "https://m.youtube.com/c/Name/videos?si=x",
    )
    assert listing_urls("http://www.youtube.com/user/old", ("streams",)) == (
        "http://www.youtube.com/user/old/streams",
    )


def test_a_tab_a_playlist_or_another_site_is_listed_as_given() -> None:
    """A URL naming a tab, a playlist, a video or another site's feed is not expanded."""
    for url in [
        "https://www.youtube.com/@chan/videos",
        "https://www.youtube.com/@chan/streams",
        "https://www.youtube.com/@chan/shorts",
        "https://www.youtube.com/@chan/live",
        "https://www.youtube.com/channel/UCabc/videos",
        "https://www.youtube.com/playlist?list=PLabc",
        "https://www.youtube.com/watch?v=abc&list=PLabc",
        "https://youtu.be/abc",
        "http://127.0.0.1:8000/feed.xml",
        "https://example.com/@chan",
    ]:
        assert listing_urls(url, ("videos", "streams")) == (url,), url


def test_only_youtube_channel_tabs_are_newest_first() -> None:
    """--since may stop a channel tab early; playlists and feeds are read to their end."""
    assert newest_first("https://www.youtube.com/@chan/videos")
    assert newest_first("https://www.youtube.com/channel/UCabc/streams")
    assert not newest_first("https://www.youtube.com/@chan/live")
    assert not newest_first("https://www.youtube.com/playlist?list=PLabc")
    assert not newest_first("http://127.0.0.1:8000/feed.xml")


def test_dates_outside_the_range_and_unknown_dates() -> None:
    """since and until are inclusive; an unknown date is never outside."""
    since, until = date(2025, 12, 30), date(2025, 12, 31)
    assert outside("2025-12-29", since, until) == "before since"
    assert outside("2026-01-01", since, until) == "after until"
    assert outside("2025-12-30", since, until) is None
    assert outside("2025-12-31", since, until) is None
    assert outside(None, since, until) is None
    assert outside("1999-01-01", None, None) is None


def test_missing_tab_reads_yt_dlps_message() -> None:
    """yt-dlp's "This channel does not have a streams tab" names the tab; other errors do not."""
    assert missing_tab(NO_STREAMS) == "streams"
    assert missing_tab("ERROR: [youtube:tab] @x: This channel does not have a videos tab") == "videos"
    assert missing_tab("ERROR: [youtube:tab] @x: HTTP Error 404: Not Found") is None


# ---- run_discovery over the tabs -------------------------------------------------------------


async def test_tabs_are_listed_in_order_under_the_users_url(tmp_path: Path) -> None:
    """videos then streams (Settings.tabs); each ref keeps the URL the user gave as its channel."""
    source = TabDiscoverer(
        {
            f"{CHANNEL}/videos": [yt_entry("v1"), yt_entry("v2")],
            f"{CHANNEL}/streams": [yt_entry("s1"), yt_entry("v2")],  # listed twice: taken once
            f"{CHANNEL}/shorts": [yt_entry("x1", short=True)],
        }
    )
    queued, events, _ = await discover(tmp_path, source)
    assert [r.id for r in queued] == ["v1", "v2", "s1"]
    assert {r.channel for r in queued} == {CHANNEL}
    assert queued[0].channel_name == "The Channel" and queued[0].channel_id == "UCabcdefghijklmnopqrstuv"
    assert f"{CHANNEL}/shorts" not in source.pulled
    done = next(e for e in events if e["event"] == "discovery_done")
    assert (done["listed"], done["queued"], done["skipped"]) == (3, 3, 0)
    queued, _, _ = await discover(tmp_path, source, tabs=("shorts", "videos"))
    assert [r.id for r in queued] == ["x1", "v1", "v2"]


async def test_a_tab_the_channel_lacks_is_passed_over(tmp_path: Path) -> None:
    """yt-dlp's "does not have a streams tab" skips that tab, at info level."""
    source = TabDiscoverer({f"{CHANNEL}/videos": [yt_entry("v1")]}, fail={f"{CHANNEL}/streams": NO_STREAMS})
    queued, events, _ = await discover(tmp_path, source)
    assert [r.id for r in queued] == ["v1"]
    assert any(e["event"] == "tab_missing" and e["tab"] == "streams" for e in events)


async def test_a_later_tab_that_fails_is_logged_and_the_run_goes_on(tmp_path: Path) -> None:
    """Once something was listed, a later tab's 429 / try-later is a tab_failed warning (redacted,
    counted) and discovery ends normally with what it has."""
    why = "cannot list x: HTTP Error 429: Too Many Requests (proxy http://me:hunter2@p:3128)"
    source = TabDiscoverer({f"{CHANNEL}/videos": [yt_entry("v1")]}, fail={f"{CHANNEL}/streams": why})
    queued, events, ctx = await discover(tmp_path, source)
    assert [r.id for r in queued] == ["v1"] and ctx.metrics.discovery_done
    failed = [e for e in events if e["event"] == "tab_failed"]
    assert len(failed) == 1 and failed[0]["log_level"] == "warning"
    assert "429" in failed[0]["reason"] and "hunter2" not in failed[0]["reason"]
    done = next(e for e in events if e["event"] == "discovery_done")
    assert done["failed_listings"] == 1 and done["queued"] == 1


async def test_a_listing_that_fails_before_anything_was_listed_fails_the_run(tmp_path: Path) -> None:
    """The first tab refused (nothing listed at all): the DiscoverError ends the run, as before."""
    bot = "cannot list x: Sign in to confirm you're not a bot"
    source = TabDiscoverer({f"{CHANNEL}/streams": [yt_entry("s1")]}, fail={f"{CHANNEL}/videos": bot})
    with pytest.raises(DiscoverError, match="not a bot"):
        await discover(tmp_path, source)
    with pytest.raises(DiscoverError, match="not a bot"):  # a single listing, too
        await discover(tmp_path, TabDiscoverer({}, fail={"http://h/feed.xml": bot}), "http://h/feed.xml")


@dataclass
class PartlyListed(TabDiscoverer):
    """Hands out its entries, then fails as yt-dlp does when a later page is refused."""

    async def discover(self, url: str) -> AsyncGenerator[VideoRef, None]:
        async for ref in super().discover(url):
            yield ref
        raise DiscoverError("cannot list x: This content isn't available, try again later")


async def test_a_listing_that_fails_after_some_entries_keeps_them(tmp_path: Path) -> None:
    """yt-dlp fails on a later page of a playlist: the entries it gave are queued, the run goes on."""
    url = "https://www.youtube.com/playlist?list=PLx"
    queued, events, _ = await discover(tmp_path, PartlyListed({url: [yt_entry("p1"), yt_entry("p2")]}), url)
    assert [r.id for r in queued] == ["p1", "p2"]
    assert [e["event"] for e in events if e["event"] == "tab_failed"] == ["tab_failed"]


def test_upload_days_that_are_not_real_dates_are_none() -> None:
    """A bad YYYYMMDD falls back to the timestamp; a NaN, infinite or huge timestamp is None."""
    assert upload_day_of("20250131") == "2025-01-31"
    assert upload_day_of("20250230") is None and upload_day_of("20251301") is None
    assert upload_day_of("20250230", 1767225600) == "2026-01-01"
    for stamp in (float("nan"), float("inf"), 1e20, -1e20, True):
        assert upload_day_of(None, stamp) is None, stamp
    ref = entry_to_ref({"id": "x", "url": "http://h/x", "upload_date": "20250230", "timestamp": 1e300}, "c")
    assert ref is not None and ref.upload_date is None


def test_the_settings_and_the_listing_read_tabs_alike() -> None:
    """TABS in the settings and --tabs share one parser: same names, same refusals."""
    assert Settings(tabs=" Shorts , videos,shorts ").tabs == ",".join(parse_tabs(" Shorts , videos,shorts "))
    with pytest.raises(ValueError, match="unknown tab 'clips'"):
        Settings(tabs="videos,clips")


async def test_upcoming_and_live_entries_are_recorded_and_skipped(tmp_path: Path) -> None:
    """is_upcoming / is_live are skipped and counted, registered for status, not queued, not taken."""
    ledger = Ledger()
    source = TabDiscoverer(
        {
            f"{CHANNEL}/videos": [yt_entry("p1", live_status="is_upcoming", duration=None), yt_entry("v1")],
            f"{CHANNEL}/streams": [
                yt_entry("l1", live_status="is_live", duration=None),
                yt_entry("w1", live_status="was_live"),
            ],
        }
    )
    queued, events, ctx = await discover(tmp_path, source, ledger=ledger, limit=2)
    assert [r.id for r in queued] == ["v1", "w1"]  # the upcoming and live ones do not count toward 2
    assert skipped(events) == {"p1": "upcoming", "l1": "live"}
    assert ctx.metrics.skipped == 2 and ctx.metrics.queued == 2
    assert [
        (r.id, r.live_status) for r in ledger.registered if r.live_status in ("is_upcoming", "is_live")
    ] == [
        ("p1", "is_upcoming"),
        ("l1", "is_live"),
    ]


async def test_limit_takes_the_first_n_after_filters_stored_ones_count(tmp_path: Path) -> None:
    """--limit 3: shorts are filtered first; a stored video counts toward N; listing stops at N."""
    entries = [yt_entry("s1", short=True), yt_entry("v1"), yt_entry("v2"), yt_entry("v3"), yt_entry("v4")]
    source = TabDiscoverer({f"{CHANNEL}/videos": entries, f"{CHANNEL}/streams": [yt_entry("z1")]})
    queued, events, ctx = await discover(
        tmp_path, source, ledger=Ledger(done={"v2"}), limit=3, skip_shorts=True
    )
    assert [r.id for r in queued] == ["v1", "v3"]
    assert skipped(events) == {"s1": "short", "v2": "already stored"}
    assert source.pulled == {f"{CHANNEL}/videos": 4}  # v4 and the streams tab are never read
    assert source.closed == [f"{CHANNEL}/videos"]
    assert ctx.metrics.skipped == 2


async def test_limit_runs_on_into_the_next_tab(tmp_path: Path) -> None:
    """The N newest in listing order: the videos tab first, then the streams tab."""
    source = TabDiscoverer(
        {f"{CHANNEL}/videos": [yt_entry("v1")], f"{CHANNEL}/streams": [yt_entry("s1"), yt_entry("s2")]}
    )
    queued, _, _ = await discover(tmp_path, source, limit=2)
    assert [r.id for r in queued] == ["v1", "s1"]
    assert source.pulled[f"{CHANNEL}/streams"] == 1


async def test_since_stops_a_channel_tab_at_the_first_older_entry(tmp_path: Path) -> None:
    """Newest first: the first entry before --since ends that tab (closed); the next tab is read."""
    videos = [
        yt_entry("v1", "2026-01-05"),
        yt_entry("v2"),
        yt_entry("v3", "2025-12-01"),
        yt_entry("v4", "2026-01-09"),
    ]
    streams = [yt_entry("s1", "2026-01-03"), yt_entry("s2", "2025-11-01"), yt_entry("s3", "2026-01-04")]
    source = TabDiscoverer({f"{CHANNEL}/videos": videos, f"{CHANNEL}/streams": streams})
    queued, events, _ = await discover(tmp_path, source, since=date(2026, 1, 1), until=date(2026, 1, 4))
    assert [r.id for r in queued] == ["v2", "s1"]  # v2 has no date in the listing: kept
    assert skipped(events) == {"v1": "after until", "v3": "before since", "s2": "before since"}
    assert source.pulled == {f"{CHANNEL}/videos": 3, f"{CHANNEL}/streams": 2}
    assert source.closed == [f"{CHANNEL}/videos", f"{CHANNEL}/streams"]
    stops = [e["reason"] for e in events if e["event"] == "listing_stopped"]
    assert stops == ["since", "since"]


async def test_since_filters_a_playlist_without_stopping(tmp_path: Path) -> None:
    """A playlist or a feed has its own order: every entry is read and the old ones filtered."""
    url = "https://www.youtube.com/playlist?list=PLabc"
    source = TabDiscoverer({url: [yt_entry("a", "2025-01-01"), yt_entry("b", "2026-02-01")]})
    queued, events, _ = await discover(tmp_path, source, url, since=date(2026, 1, 1))
    assert [r.id for r in queued] == ["b"]
    assert skipped(events) == {"a": "before since"}
    assert not any(e["event"] == "listing_stopped" for e in events)


async def test_new_only_stops_a_tab_after_a_streak_of_stored_videos(tmp_path: Path) -> None:
    """--new-only: K stored in a row end a tab; a new one in between starts the count again."""
    videos = [yt_entry(v) for v in ("n1", "d1", "n2", "d2", "d3", "d4", "d5")]
    streams = [yt_entry(v) for v in ("n3", "d6", "d7", "n4")]
    ledger = Ledger(done={"d1", "d2", "d3", "d4", "d5", "d6", "d7"})
    source = TabDiscoverer({f"{CHANNEL}/videos": videos, f"{CHANNEL}/streams": streams})
    queued, events, _ = await discover(tmp_path, source, ledger=ledger, new_only=True, new_only_streak=2)
    assert [r.id for r in queued] == ["n1", "n2", "n3"]
    assert source.pulled == {f"{CHANNEL}/videos": 5, f"{CHANNEL}/streams": 3}
    assert [e["reason"] for e in events if e["event"] == "listing_stopped"] == ["new_only", "new_only"]
    queued, _, _ = await discover(tmp_path, source, ledger=ledger, new_only_streak=2)  # off: all read
    assert [r.id for r in queued] == ["n1", "n2", "n3", "n4"]


async def test_refs_of_a_retry_keep_their_own_channel(tmp_path: Path) -> None:
    """A listing of the URL itself (not a tab of it) keeps each ref's channel as the source gave it."""

    @dataclass
    class Known:
        async def discover(self, url: str) -> AsyncGenerator[VideoRef, None]:
            yield VideoRef("a", "http://x/a", channel="http://feed/a.xml")

    out: asyncio.Queue[VideoRef | None] = asyncio.Queue()
    settings = Settings(ytingest_home=tmp_path)
    ctx = RunContext(settings, Ledger(), metrics_for(PIPELINE, settings))  # type: ignore[arg-type]
    await run_discovery(ctx, Known(), "ytingest:retry", out)
    ref = out.get_nowait()
    assert ref is not None and ref.channel == "http://feed/a.xml"
