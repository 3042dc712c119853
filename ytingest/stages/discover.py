"""discover: ``yt-dlp --flat-playlist`` streams a channel's entries as ``VideoRef`` items."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from ytingest.errors import DiscoverError
from ytingest.items import WAITING, VideoRef
from ytingest.logs import get_logger, redact
from ytingest.pipeline.budget import LISTING_ENTRIES_PER_UNIT
from ytingest.pipeline.context import RunContext
from ytingest.ports import KnownVideos, Source
from ytingest.sourcetext import public_url
from ytingest.ytdlp.listing import (
    listing_urls,
    missing_tab,
    newest_first,
    outside,
    parse_tabs,
)

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


def is_short(ref: VideoRef) -> bool:
    """A YouTube Short: a /shorts/ URL or a known duration under a minute."""
    if "/shorts/" in ref.url or "/shorts/" in ref.webpage_url:
        return True
    return ref.duration is not None and ref.duration < SHORTS_MAX_SECONDS


@dataclass
class ListDiscoverer:
    """Videos already known (``ytingest retry``): no listing, the refs come from the ledger."""

    known_videos: list[VideoRef]

    async def discover(self, url: str) -> AsyncGenerator[VideoRef, None]:
        for ref in self.known_videos:
            yield ref


async def run_discovery(
    ctx: RunContext,
    discoverer: Source,
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

    async def take_from(self, discoverer: Source, source: str) -> None:
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

    async def _spend(self, discoverer: Source) -> bool:
        """A unit of the run's request budget for a listing: one as it starts, one per
        ``LISTING_ENTRIES_PER_UNIT`` entries read (``pipeline.budget``); False when the run stops
        first. Videos already known (``retry``) are not listed, so they take none."""
        budget = self.ctx.budget
        if budget is None or isinstance(discoverer, KnownVideos):
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
