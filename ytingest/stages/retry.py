"""What yt-dlp's failures mean and when to try again: classification, per-video backoff, the shared pause."""

from __future__ import annotations

import asyncio
import random
import time
from email.utils import parsedate_to_datetime

from ytingest.errors import DownloadError, MediaForbiddenError, NotYetAvailableError, RateLimitedError
from ytingest.logs import redact

COOKIES_ADVICE = "pass cookies with --cookies FILE or --cookies-from-browser BROWSER"
SLOWER_ADVICE = "a slower rate (--ytdlp-arg=--sleep-requests --ytdlp-arg=1)"

# The texts below are yt-dlp's (extractor/youtube/_video.py passes YouTube's playability reason
# through, and adds its own hints from extractor/common.py _login_hint); tests quote them whole.
_BOT_CHECK = ("confirm you're not a bot", "confirm you’re not a bot", "confirm you are not a bot")
_TRY_LATER = (
    "this content isn't available, try again later",
    "this content isn’t available, try again later",
)
_RATE_LIMITED = ("http error 429", "too many requests", "rate-limit", "rate limit")
# upcoming premieres and live events, and streams live right now: not failures of the video
_UPCOMING = ("this live event will begin", "premieres in", "premiere will begin", "waiting for scheduled")
LIVE_FILTER = "!is_live"  # the download's --match-filter: a stream live right now is skipped
# yt-dlp's words for it (utils/_utils.py match_filter_func; YoutubeDL._match_entry prints them):
# "[download] <title> does not pass filter (!is_live), skipping .."
_LIVE_NOW = (
    "is live now",
    "this live stream recording is not available",
    "live stream is offline",
    f"does not pass filter ({LIVE_FILTER})",
)
# permanent answers, each with its own reason (first match wins, so the specific ones come first)
_PERMANENT_REASONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("confirm your age", "age-restricted", "inappropriate for some users"),
        "age-restricted: " + COOKIES_ADVICE,
    ),
    (("members-only", "members only", "channel's members", "join this channel"), "members-only video"),
    (("private video", "this video is private"), "private video"),
    (
        ("has been terminated", "account associated with this video has been"),
        "removed: the account was terminated",
    ),
    (("has been removed", "video has been deleted", "removed for violating"), "removed video"),
    (("copyright",), "removed: copyright claim"),
    (
        ("not available in your country", "geo restriction", "geo-restricted"),
        "not available from this location",
    ),
    (("video unavailable", "this video is not available", "this video does not exist"), "video unavailable"),
    (("drm protected",), "DRM-protected"),
    (("unsupported url", "is not a valid url"), "not a video URL yt-dlp supports"),
    (
        ("http error 401", "http error 403", "http error 404", "http error 410", "http error 451"),
        "",  # the HTTP status says it
    ),
)
# yt-dlp's words when the media download itself (not the extraction) got a 403
_MEDIA_403 = ("unable to download video data: http error 403", "got error: http error 403")
_SIGN_IN = ("http error 401", "http error 403", "sign in", "login required", "cookies", *_BOT_CHECK)


def classify(reason: str, retry_after: float | None = None) -> DownloadError:
    """The error for yt-dlp's failure ``reason`` (redacted: it may echo a proxy's password).

    - bot check, "try again later", 429: ``RateLimitedError`` (every download pauses);
    - upcoming premieres, live events, live-now streams: ``NotYetAvailableError`` (left pending);
    - a 403 on the media URL: ``MediaForbiddenError`` (retried once with a fresh extraction);
    - private, removed, members-only, age-restricted, 4xx: permanent, with a reason of its own;
    - anything else: transient.
    """
    reason = redact(reason)
    low = reason.lower()
    if any(mark in low for mark in _BOT_CHECK):
        return RateLimitedError(
            _advised(f"YouTube asks to confirm this is not a bot ({reason})"), retry_after, kind="bot_check"
        )
    if any(mark in low for mark in _TRY_LATER):
        return RateLimitedError(
            _advised(f"YouTube is rate-limiting this session ({reason})"), retry_after, kind="try_later"
        )
    if any(mark in low for mark in _RATE_LIMITED):
        return RateLimitedError(reason, retry_after)
    if any(mark in low for mark in _UPCOMING):
        return NotYetAvailableError(f"not yet available: {reason}", live_status="is_upcoming")
    if any(mark in low for mark in _LIVE_NOW):
        return NotYetAvailableError(f"live now: {reason}", live_status="is_live")
    if "did not get any data blocks" in low:  # yt-dlp's words for an empty body
        return DownloadError(f"the server sent an empty file ({reason})", permanent=True)
    if any(mark in low for mark in _MEDIA_403):
        return MediaForbiddenError(f"media URL refused (HTTP 403) ({reason})")
    for marks, why in _PERMANENT_REASONS:
        if any(mark in low for mark in marks):
            return DownloadError(f"{why} ({reason})" if why else reason, permanent=True)
    return DownloadError(reason)


def _advised(message: str) -> str:
    return f"{message}; the fix: {COOKIES_ADVICE}, {SLOWER_ADVICE}, or fewer IO_WORKERS"


def listing_hint(reason: str) -> str:
    """What to add to a failed listing's message: the cookies advice when the site refused
    without sign-in (401/403, a bot check, "Sign in"), else nothing."""
    low = reason.lower()
    return f" ({COOKIES_ADVICE})" if any(mark in low for mark in _SIGN_IN) else ""


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
