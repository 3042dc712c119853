"""When to try a download again, and how long to wait: per-video backoff and the shared 429 pause."""

from __future__ import annotations

import asyncio
import random
import time
from email.utils import parsedate_to_datetime

from ytingest.errors import DownloadError, RateLimitedError

# yt-dlp's messages for answers that another try will not change
_PERMANENT = (
    "HTTP Error 403",
    "HTTP Error 404",
    "HTTP Error 410",
    "HTTP Error 401",
    "HTTP Error 451",
    "Private video",
    "Video unavailable",
    "This video is not available",
    "has been removed",
    "members-only",
    "Sign in to confirm your age",
    "Unsupported URL",
    "is not a valid URL",
    "copyright",
    "account associated with this video has been terminated",
)
_RATE_LIMITED = ("HTTP Error 429", "Too Many Requests", "rate-limit", "rate limit")


def classify(reason: str, retry_after: float | None = None) -> DownloadError:
    """The error for yt-dlp's failure ``reason``: rate-limited, permanent, or transient."""
    if any(mark in reason for mark in _RATE_LIMITED):
        return RateLimitedError(reason, retry_after)
    if "Did not get any data blocks" in reason:  # yt-dlp's words for an empty body
        return DownloadError(f"the server sent an empty file ({reason})", permanent=True)
    return DownloadError(reason, permanent=any(mark.lower() in reason.lower() for mark in _PERMANENT))


def parse_retry_after(value: str) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None if unreadable."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True when it was (the run is stopping)."""
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await stop.wait()
    except TimeoutError:
        return stop.is_set()
    return True


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter in its upper half: base·2^(n-1), at most ``cap``."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


class SharedBackoff:
    """One pause for every new download after the site rate-limits us (not N workers hammering it).

    ``trip`` extends the pause: Retry-After when the site sent one, else exponential in the
    number of 429s in a row; ``success`` resets that count.
    """

    def __init__(self, base_s: float = 5.0, cap_s: float = 300.0) -> None:
        self.base_s, self.cap_s = base_s, cap_s
        self.strikes = 0
        self._until = 0.0

    def trip(self, retry_after: float | None) -> float:
        self.strikes += 1
        delay = (
            retry_after if retry_after is not None else backoff_delay(self.strikes, self.base_s, self.cap_s)
        )
        delay = min(delay, self.cap_s)
        self._until = max(self._until, time.monotonic() + delay)
        return delay

    def success(self) -> None:
        self.strikes = 0

    @property
    def remaining(self) -> float:
        return max(0.0, self._until - time.monotonic())

    async def wait(self, stop: asyncio.Event) -> None:
        """Until the pause is over (another 429 may extend it) or the run is stopping."""
        while (left := self.remaining) > 0 and not stop.is_set():
            await sleep_unless(stop, left)
