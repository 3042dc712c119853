"""``HourlyBudget``: one process's request budget (DOWNLOAD_RATE_GLOBAL units per hour), paced evenly.

YouTube limits requests per address and per account, not per process: about 300 videos an hour
(about 1,000 page/player requests) signed out, about 2,000 videos an hour with an account; yt-dlp's
wiki advises 5-10 s between downloads (shared/YOUTUBE.md). A plain ``stream`` is one address, so
one budget. Each download attempt takes a unit, and so does a listing (one when it starts, one per
``LISTING_ENTRIES_PER_UNIT`` entries read after that: a page of a YouTube tab is about 30 entries,
and a video costs about three requests, so ~100 entries cost about what one video does).

Unit n is taken no earlier than unit n-1 + 3600/rate: no bursts. The budget is the download
stage's ``GlobalGate`` where no cluster gate is given; a cluster's ``DownloadGate`` paces from its
database instead. A 429 pauses downloads through the stage's own ``SharedBackoff``: ``pause`` here
only counts it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ytingest.config import Settings
from ytingest.logs import get_logger

log = get_logger()

YOUTUBE_SIGNED_OUT = 250.0  # per hour: under the ~300 videos/h of a signed-out address, room for listings
YOUTUBE_SIGNED_IN = 1500.0  # per hour: 3/4 of an account's ~2,000 videos/h (listings, retries, the browser)
LISTING_ENTRIES_PER_UNIT = 100
HOUR_S = 3600.0
_YOUTUBE_HOSTS = ("youtube.com", "youtu.be", "youtube-nocookie.com")  # and their subdomains (www, m, music)


def is_youtube(url: str) -> bool:
    """Whether ``url`` is on YouTube (youtube.com and its subdomains, music.youtube.com, youtu.be)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return any(host == d or host.endswith("." + d) for d in _YOUTUBE_HOSTS)


def budget_rate(settings: Settings, urls: Iterable[str]) -> tuple[float, str]:
    """Units per hour for a run that fetches ``urls``, and where the figure comes from (0: none).

    An explicit DOWNLOAD_RATE_GLOBAL wins (0: explicitly unlimited). Unset: YouTube gets
    ``YOUTUBE_SIGNED_IN`` with cookies (COOKIES_FILE, COOKIES_FROM_BROWSER), else
    ``YOUTUBE_SIGNED_OUT``; any other site is unlimited.
    """
    if settings.download_rate_global is not None:
        return settings.download_rate_global, "DOWNLOAD_RATE_GLOBAL"
    if not any(is_youtube(u) for u in urls):
        return 0.0, "not YouTube"
    if settings.cookies_file is not None or settings.cookies_from_browser:
        return YOUTUBE_SIGNED_IN, "YouTube default, signed in"
    return YOUTUBE_SIGNED_OUT, "YouTube default, signed out"


@dataclass(frozen=True, slots=True)
class BudgetSample:
    """The budget now, for the monitor (``Snapshot.budget``), ``/status`` and the dashboard."""

    per_hour: float
    source: str  # where the figure comes from (DOWNLOAD_RATE_GLOBAL, or the YouTube default)
    downloads_last_hour: int  # download starts in the last hour
    listing_last_hour: int  # units listings took in the last hour
    next_start_in_s: float  # until the next unit may be taken (0: now)
    waiting: int  # downloads and listings waiting for their turn now
    pauses: int = 0  # 429s / bot checks reported to the budget this run


class HourlyBudget:
    """The in-process pace (see the module docstring); implements ``stages.download.GlobalGate``."""

    def __init__(
        self,
        per_hour: float,
        *,
        source: str = "DOWNLOAD_RATE_GLOBAL",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not per_hour > 0:
            raise ValueError("a budget needs a rate above 0 per hour")
        self.per_hour, self.source = per_hour, source
        self.interval_s = HOUR_S / per_hour
        self._clock = clock
        self._next = -math.inf  # the earliest time the next unit may be taken
        self._taken: deque[tuple[float, str]] = deque()  # (when, "download" | "listing"), last hour
        self.waiting = 0
        self.pauses = 0
        self._paused_until = -math.inf

    def reserve(self, what: str = "download") -> tuple[float, float]:
        """Book the next turn: (its time, seconds until then). Turns are ``interval_s`` apart."""
        now = self._clock()
        at = max(now, self._next)
        self._next = at + self.interval_s
        self._taken.append((at, what))
        while self._taken and self._taken[0][0] <= now - HOUR_S:
            self._taken.popleft()
        return at, at - now

    async def take(self, stop: asyncio.Event, what: str = "download") -> bool:
        """Wait for a turn; False when ``stop`` is set first (the turn is given back)."""
        return await self._turn(stop, what) is not None

    async def _turn(self, stop: asyncio.Event, what: str) -> float | None:
        """``take``, returning the turn's time (None: stopped)."""
        at, wait = self.reserve(what)
        self.waiting += 1
        try:
            stopped = await _stopped(stop, wait)
        except BaseException:
            self._give_back(at, what)
            raise
        finally:
            self.waiting -= 1
        if stopped:
            self._give_back(at, what)
            return None
        return at

    def _give_back(self, at: float, what: str) -> None:
        """An unused turn: forgotten, and the pace steps back if no later turn was booked."""
        if (at, what) in self._taken:
            self._taken.remove((at, what))
        if self._next == at + self.interval_s:
            self._next = at

    async def enter(self, stop: asyncio.Event) -> Any | None:
        """``GlobalGate``: a download's turn (a pass), or None when the run stops first. A turn that
        comes while a 429's pause is on (``pause``) is given back: the pause is waited out, then
        the download queues for a new turn."""
        while (at := await self._turn(stop, "download")) is not None:
            paused = self._paused_until - self._clock()
            if paused <= 0:
                return True
            self._give_back(at, "download")
            if await _stopped(stop, paused):
                return None
        return None

    async def leave(self, held: Any) -> None:
        """``GlobalGate``: nothing to give back (the budget paces starts, it holds no slots)."""

    async def pause(self, seconds: float, reason: str) -> None:
        """``GlobalGate``: a 429 or a bot check; turns that come before ``seconds`` are up wait it out
        (the download stage's shared pause holds the downloads not yet at the gate)."""
        self.pauses += 1
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def sample(self) -> BudgetSample:
        now = self._clock()
        recent = [what for at, what in self._taken if now - HOUR_S < at <= now]
        return BudgetSample(
            per_hour=self.per_hour,
            source=self.source,
            downloads_last_hour=recent.count("download"),
            listing_last_hour=recent.count("listing"),
            next_start_in_s=round(max(0.0, self._next - now), 2),
            waiting=self.waiting,
            pauses=self.pauses,
        )


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` unless ``stop`` is set first; True when it is set."""
    if seconds > 0 and not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass
    return stop.is_set()


def download_budget(settings: Settings, urls: Iterable[str]) -> HourlyBudget | None:
    """The budget of a plain run over ``urls`` (``budget_rate``), or None when it is unlimited."""
    per_hour, source = budget_rate(settings, urls)
    log.info("download_budget", per_hour=per_hour or None, source=source)
    return HourlyBudget(per_hour, source=source) if per_hour > 0 else None
