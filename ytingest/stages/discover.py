"""discover: ``yt-dlp --flat-playlist`` streams a channel's entries as ``VideoRef`` items."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from ytingest.childenv import child_env
from ytingest.errors import DiscoverError
from ytingest.items import WAITING, VideoRef
from ytingest.logs import get_logger, redact
from ytingest.pipeline.budget import LISTING_ENTRIES_PER_UNIT
from ytingest.pipeline.context import RunContext
from ytingest.sourcetext import CHANNEL_MAX, clean_line, public_url, with_userinfo_of
from ytingest.stages.extractors import extractor_hint
from ytingest.stages.listing import (
    listing_urls,
    missing_tab,
    newest_first,
    outside,
    parse_tabs,
    upload_day_of,
)
from ytingest.stages.retry import listing_hint
from ytingest.stages.ytdlp_options import private_cookies, with_extractor_arg

log = get_logger()

SHORTS_MAX_SECONDS = 60.0
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class Listing:
    """What a run takes from a channel's listing (``stream``'s listing flags).

    What is listed: a bare YouTube channel URL (``/@name``, ``/channel/UC…``, ``/c/name``,
    ``/user/name``) is listed as its tabs, one after the other in the order of ``tabs`` (None:
    ``Settings.tabs``, ``videos,streams``); a tab that the channel lacks is passed over. A URL that
    names a tab or a playlist, or another site's URL, is listed as given. YouTube lists each tab
    newest first; a playlist or a feed comes in its own order. A video listed twice counts once.

    Entries are then taken in listing order, each through these steps:

    1. ``skip_shorts``: a /shorts/ URL or a known duration under 60 s is skipped;
    2. upcoming premieres and live-now streams are skipped, recorded as ``upcoming``/``live``
       (``status``'s ``waiting``); a later run takes them up once they are ordinary videos;
    3. ``since``/``until`` (inclusive): an entry whose listed upload date is outside is skipped.
       An entry without a date in the listing is kept (its date comes later, from the download's
       own metadata). On a YouTube channel tab (newest first) the first entry older than
       ``since`` ends the listing of that tab; a playlist or a feed is read to its end;
    4. ``limit``: the entries left count toward N: the run takes the first N of them, so
       ``--limit N`` is "the N newest" of a channel tab. Videos stored already count toward N
       (then skipped, not downloaded again), so a re-run with the same N takes no older ones;
       listing stops as soon as N are taken;
    5. already stored (or failed permanently): skipped. With ``new_only``,
       ``Settings.new_only_streak`` of them in a row end the listing of that tab (yt-dlp's
       ``--break-on-existing``); a new video in between starts the count again.

    Every skipped entry is logged (``video_skipped`` with its reason) and counted in ``skipped``.
    """

    limit: int | None = None  # the first N entries left after steps 1-3 (see above)
    skip_shorts: bool = False
    since: date | None = None  # upload date on or after
    until: date | None = None  # upload date on or before
    new_only: bool = False  # stop a tab after NEW_ONLY_STREAK already-stored videos in a row
    tabs: tuple[str, ...] | None = None  # None: Settings.tabs; a "videos,streams" string is accepted

    def __post_init__(self) -> None:
        if self.tabs is not None:  # an unknown tab is a ConfigError when the run starts
            object.__setattr__(self, "tabs", parse_tabs(self.tabs))

    def to_log(self) -> dict[str, Any]:
        """The fields that are set, dates as ISO strings (for the ``run_started`` event)."""
        return {
            name: value.isoformat() if isinstance(value, date) else value
            for name in self.__slots__
            if (value := getattr(self, name))
        }


class Discoverer(Protocol):
    def discover(self, url: str) -> AsyncGenerator[VideoRef, None]: ...


def safe_id(raw: str | None, url: str) -> str:
    """A video id safe for file names and logs: the site's id if it is plain, else a hash."""
    if raw and _SAFE_ID.fullmatch(raw):
        return raw
    return "h" + hashlib.sha256((raw or url).encode()).hexdigest()[:20]


def entry_to_ref(entry: dict[str, Any], channel: str) -> VideoRef | None:
    """Map one flat-playlist JSON entry to a VideoRef (None if it has no URL): its text cleaned
    (``sourcetext``), its URLs and ``channel`` without userinfo; a credential in the entry's URL,
    or in ``channel``'s for a URL on the same host, stays only in ``fetch_url``."""
    url = entry.get("url") or entry.get("webpage_url")
    if not isinstance(url, str) or not url:
        return None
    raw_id = entry.get("id")
    if not raw_id:  # the generic extractor smuggles the id into the URL
        from yt_dlp.utils import unsmuggle_url

        url_plain, data = unsmuggle_url(url, {})
        raw_id = (data or {}).get("force_videoid")
    else:
        url_plain = url
    webpage = entry.get("webpage_url") or url_plain
    if isinstance(webpage, str) and "#__youtubedl_smuggle" in webpage:
        webpage = webpage.split("#", 1)[0]
    duration = entry.get("duration")
    live = entry.get("live_status")
    fetch = with_userinfo_of(url, channel)
    return VideoRef(
        id=safe_id(str(raw_id) if raw_id else None, public_url(url)),
        url=public_url(url),
        title=clean_line(entry.get("title")),
        duration=float(duration) if isinstance(duration, int | float) else None,
        channel=public_url(channel),
        webpage_url=public_url(str(webpage)),
        upload_date=upload_day(entry),
        live_status=live if isinstance(live, str) else None,
        channel_name=_first_text(entry, "channel", "uploader", "playlist_channel", "playlist_uploader"),
        channel_id=_first_text(entry, "channel_id", "playlist_channel_id"),
        fetch_url=fetch if fetch != public_url(url) else "",
    )


def _first_text(entry: dict[str, Any], *keys: str) -> str:
    """The first of ``keys`` that holds a non-empty string (the entry's own fields come first, then
    those yt-dlp copies from the playlist onto each entry); else ``""``."""
    for key in keys:
        value = entry.get(key)
        if isinstance(value, str) and (text := clean_line(value, CHANNEL_MAX)):
            return text
    return ""


def upload_day(entry: dict[str, Any]) -> str | None:
    """The entry's upload date as ISO ``YYYY-MM-DD``: yt-dlp's ``upload_date`` (YYYYMMDD), else its
    ``timestamp`` (an RSS feed's ``pubDate``) read as UTC; None when neither is a real date."""
    return upload_day_of(entry.get("upload_date"), entry.get("timestamp"))


def is_short(ref: VideoRef) -> bool:
    """A YouTube Short: a /shorts/ URL or a known duration under a minute."""
    if "/shorts/" in ref.url or "/shorts/" in ref.webpage_url:
        return True
    return ref.duration is not None and ref.duration < SHORTS_MAX_SECONDS


@dataclass
class ListDiscoverer:
    """Videos already known (``ytingest retry``): no listing, the refs come from the ledger."""

    refs: list[VideoRef]

    async def discover(self, url: str) -> AsyncGenerator[VideoRef, None]:
        for ref in self.refs:
            yield ref


@dataclass
class YtDlpDiscoverer:
    """Runs ``yt-dlp --flat-playlist --lazy-playlist -j`` and yields entries as yt-dlp prints them.

    ``--lazy-playlist``: without it yt-dlp reads every page of a playlist before it prints the
    first entry, and an early stop (``--limit``, ``--since``, ``--new-only``) would save no request.
    ``timeout_s`` bounds yt-dlp's silence (the wait for its next line), not the listing: a
    consumer that waits on a full queue never trips it.
    """

    ytdlp: tuple[str, ...] = ("yt-dlp",)
    timeout_s: float = 600.0
    pick_extractor: bool = True  # pass the extractor found here (stages/extractors.py)

    async def discover(self, url: str) -> AsyncGenerator[VideoRef, None]:
        with tempfile.TemporaryFile() as errfile, tempfile.TemporaryDirectory() as scratch:
            # closed here, not left to the garbage collector: a listing stopped early kills its child now
            async with contextlib.aclosing(self._run(url, errfile, Path(scratch))) as refs:
                async for ref in refs:
                    yield ref

    def command(self, url: str, hint: list[str], scratch: Path) -> list[str]:
        """The child's argv (its cookies: a private copy in ``scratch``)."""
        # YouTube tabs: a date per entry ("2 weeks ago"), for --since; merged into the user's own
        args = with_extractor_arg([*self.ytdlp, *hint], "youtubetab", "approximate_date")
        args = private_cookies(args, scratch)
        return [*args, "--flat-playlist", "--lazy-playlist", "-j", "--no-warnings", "--", url]

    async def _run(self, url: str, errfile: Any, scratch: Path) -> AsyncGenerator[VideoRef, None]:
        hint = await asyncio.to_thread(extractor_hint, url) if self.pick_extractor else []
        try:
            args = await asyncio.to_thread(self.command, url, hint, scratch)
            proc = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.PIPE, stderr=errfile, limit=16 * 1024 * 1024, env=child_env()
            )
        except OSError as exc:
            raise DiscoverError(f"cannot run {self.ytdlp[0]}: {exc.strerror or exc}") from None
        assert proc.stdout is not None
        try:
            while line := await self._next_line(proc.stdout, url):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                ref = entry_to_ref(entry, url) if isinstance(entry, dict) else None
                if ref is not None:
                    yield ref  # no timeout runs while the consumer holds this
            async with asyncio.timeout(self.timeout_s):
                rc = await proc.wait()
        except TimeoutError:
            raise DiscoverError(
                f"listing {public_url(url)}: yt-dlp did not exit within {self.timeout_s:.0f}s"
            ) from None
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if rc != 0:  # the caller decides whether a partial listing is enough
            reason = redact(last_error_line(read_all(errfile)))
            raise DiscoverError(f"cannot list {public_url(url)}: {reason}{listing_hint(reason)}")

    async def _next_line(self, stdout: asyncio.StreamReader, url: str) -> bytes:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await stdout.readline()
        except TimeoutError:
            raise DiscoverError(
                f"listing {public_url(url)}: yt-dlp printed nothing for {self.timeout_s:.0f}s"
            ) from None


def last_error_line(stderr: str) -> str:
    """yt-dlp's last ``ERROR:`` line, without the prefix; else its last line. (A progress line's
    ``\r`` can split an error: ``ERROR: \r[download] Got error: ...`` reads as the second half.)"""
    text = stderr.replace("ERROR: \r", "ERROR: ").replace("\r", "\n")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    line = (errors or lines or ["yt-dlp failed without a message"])[-1]
    return line.removeprefix("ERROR:").strip()[:500]


def read_all(file: Any) -> str:
    """Everything a child wrote to a temporary file (small: yt-dlp's stderr)."""
    file.seek(0)
    return str(file.read().decode(errors="replace"))


async def run_discovery(
    ctx: RunContext,
    discoverer: Discoverer,
    url: str,
    outbox: asyncio.Queue[VideoRef | None],
    listing: Listing | None = None,
) -> None:
    """List ``url`` (a bare channel: its tabs, in order) and queue what ``listing`` selects as the
    entries arrive (the steps are in ``Listing``'s docstring); then the end marker."""
    listing = listing or Listing()
    tabs = listing.tabs if listing.tabs is not None else parse_tabs(ctx.settings.tabs)
    pick = _Picker(ctx, listing, public_url(url), outbox)
    failed = 0
    for source in listing_urls(url, tabs):
        if pick.full or ctx.stopping.is_set():
            break
        try:
            await pick.take_from(discoverer, source)
        except DiscoverError as exc:
            if source != url and (tab := missing_tab(str(exc))) is not None:
                log.info("tab_missing", channel=pick.channel, tab=tab)  # e.g. a channel that never streamed
                continue
            if not pick.seen:  # nothing listed at all: the run cannot start
                raise
            failed += 1  # what was listed goes on; a later run lists the rest
            log.warning(
                "tab_failed",
                channel=pick.channel,
                source=public_url(source),
                reason=redact(str(exc)),
                listed=len(pick.seen),
            )
    ctx.metrics.discovery_done = True
    log.info(
        "discovery_done",
        channel=pick.channel,
        listed=len(pick.seen),
        queued=pick.queued,
        skipped=pick.skipped,
        failed_listings=failed,
    )
    await outbox.put(None)


@dataclass
class _Picker:
    """One run's selection across the tabs it lists: what was seen, taken (``--limit``), queued."""

    ctx: RunContext
    listing: Listing
    channel: (
        str  # the URL the user gave, without userinfo (``public_url``): the channel's key in the database
    )
    outbox: asyncio.Queue[VideoRef | None]
    seen: set[str] = field(default_factory=set)
    taken: int = 0
    queued: int = 0
    skipped: int = 0

    @property
    def full(self) -> bool:
        return self.listing.limit is not None and self.taken >= self.listing.limit

    async def take_from(self, discoverer: Discoverer, source: str) -> None:
        """Take entries from one listing until it ends, the run is full, or it stops early."""
        sorted_by_date, streak, read = newest_first(source), 0, 0
        if not await self._spend(discoverer):
            return
        async with contextlib.aclosing(discoverer.discover(source)) as refs:  # closing kills the child
            async for found in refs:
                read += 1
                if read % LISTING_ENTRIES_PER_UNIT == 0 and not await self._spend(discoverer):
                    return
                if self.ctx.stopping.is_set() or self.full:
                    return
                ref = found if public_url(source) == self.channel else replace(found, channel=self.channel)
                if ref.id in self.seen:
                    continue
                self.seen.add(ref.id)
                stored = await self._pick(ref)
                if stored is None:
                    if sorted_by_date and outside(ref.upload_date, self.listing.since, None):
                        self._stop(source, "since")  # newest first: the rest is older still
                        return
                    continue
                streak = streak + 1 if stored else 0
                if self.listing.new_only and streak >= self.ctx.settings.new_only_streak:
                    self._stop(source, "new_only")
                    return
                if self.full:  # now, not when the listing gets round to one more entry
                    return

    async def _spend(self, discoverer: Discoverer) -> bool:
        """A unit of the run's request budget for a listing: one as it starts, one per
        ``LISTING_ENTRIES_PER_UNIT`` entries read (``pipeline.budget``); False when the run stops
        first. Videos already known (``retry``) are not listed, so they take none."""
        budget = self.ctx.budget
        if budget is None or isinstance(discoverer, ListDiscoverer):
            return True
        return await budget.take(self.ctx.stopping, "listing")

    async def _pick(self, ref: VideoRef) -> bool | None:
        """Queue ``ref`` (False), skip it as stored already (True), or filter it out (None)."""
        listing, ledger = self.listing, self.ctx.ledger
        if listing.skip_shorts and is_short(ref):
            self._skip(ref, "short")
            return None
        if ref.live_status in WAITING:
            await ledger.register_video(ref)  # recorded as upcoming/live, not as an attempt
            self._skip(ref, WAITING[ref.live_status])
            return None
        if reason := outside(ref.upload_date, listing.since, listing.until):
            self._skip(ref, reason, upload_date=ref.upload_date)
            return None
        self.taken += 1
        if reason := await ledger.skip_reason(ref.id):
            self._skip(ref, reason)
            return True
        await ledger.register_video(ref)
        log.info("video_queued", video_id=ref.id, title=ref.title, duration=ref.duration)
        self.ctx.metrics.queued += 1
        self.queued += 1
        await self.outbox.put(ref)
        return False

    def _skip(self, ref: VideoRef, reason: str, **extra: Any) -> None:
        self.ctx.metrics.skipped += 1
        self.skipped += 1
        log.info("video_skipped", video_id=ref.id, reason=reason, **extra)

    def _stop(self, source: str, why: str) -> None:
        log.info(
            "listing_stopped",
            channel=self.channel,
            source=public_url(source),
            reason=why,
            listed=len(self.seen),
        )
