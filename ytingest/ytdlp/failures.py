"""What yt-dlp's failures mean: each text classified, with where yt-dlp has it (the pause: pause.py)."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

from ytingest.errors import DownloadError, MediaForbiddenError, NotYetAvailableError, RateLimitedError
from ytingest.logs import redact

COOKIES_ADVICE = "pass cookies with --cookies FILE or --cookies-from-browser BROWSER"
SLOWER_ADVICE = "a slower rate (--ytdlp-arg=--sleep-requests --ytdlp-arg=1)"
PO_TOKEN_ADVICE = "a PO-token provider plugin (docs/youtube.md: Plugins and PO tokens)"
UPGRADE_ADVICE = (
    'YouTube changes its clients often: upgrade yt-dlp (pip install -U "yt-dlp[default]") or add '
    + PO_TOKEN_ADVICE
)
BOT_CHECK_ADVICE = (
    "YouTube keeps asking to confirm this is not a bot: export cookies from a private browser window "
    "that you then close for good (--cookies FILE), run from a residential address, or add " + PO_TOKEN_ADVICE
)
HOUR_S = 3600.0  # "rate-limited by YouTube for up to an hour"

# yt-dlp's texts, matched lower-cased; tests/unit/test_youtube_messages.py quotes each one whole.
# Read in yt-dlp 2026.08.19 (and 2026.11.23, installed). _video.py is extractor/youtube/_video.py,
# whose _real_extract passes YouTube's playability reason through raise_no_formats(reason).
# text | where in yt-dlp (or its issue) | what ytingest does
# - "Sign in to confirm you’re not a bot" + the login hint | YouTube's reason via _video.py
#   _real_extract, _base.py _youtube_login_hint (#10128, #16870) | the pause; BOT_CHECK_LIMIT in a row stop
# - "Video unavailable. YouTube is requiring a captcha challenge before playback" | _video.py
#   _real_extract (PR #12939) | a bot check, not the permanent "video unavailable"
# - "This content isn't available, try again later. The current session [Your account] has been
#   rate-limited by YouTube for up to an hour. ..." | _video.py _real_extract (PR #12958) | the pause,
#   an hour (RATE_LIMIT_MAX_S caps it)
# - "HTTP Error 429: Too Many Requests" | networking/exceptions.py HTTPError | the pause
# - "unable to download video data: HTTP Error 403" | YoutubeDL.py process_info; "[download] Got
#   error: HTTP Error 403" | downloader/common.py download | a fresh extraction, then transient with
#   the upgrade advice (403s follow YouTube's client changes: #17458)
# - "Unable to download webpage / API page: HTTP Error 403" | extractor/common.py _request_webpage,
#   _base.py _call_api | transient, the upgrade advice: a 403 is never permanent
# - "Did not get any data blocks" | downloader/http.py real_download | permanent (an empty body)
# - "does not pass filter (!is_live)" | utils/_utils.py match_filter_func | live now: waiting
# - "This live event will begin in", "Premieres in" | YouTube's reason via _video.py | waiting
# - "Sign in to confirm your age", "inappropriate" | _video.py _is_agegated | permanent, cookies
# - "Private video", "Join this channel", "has been removed", "account ... terminated",
#   "Video unavailable" | YouTube's reasons via _video.py | permanent, each with its own reason
_BOT_CHECK = ("confirm you're not a bot", "confirm you’re not a bot", "confirm you are not a bot")
_CAPTCHA = ("requiring a captcha challenge",)
_HOUR = ("rate-limited by youtube for up to an hour",)
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
    (  # yt-dlp's words for file://, javascript: and the like (YoutubeDL.urlopen, networking/common.py)
        ("file:// urls are disabled", "unsupported url scheme"),
        "not a network URL: only http(s) media is downloaded",
    ),
    (("unsupported url", "is not a valid url"), "not a video URL yt-dlp supports"),
    (
        ("http error 401", "http error 404", "http error 410", "http error 451"),
        "",  # the HTTP status says it (a 403 is not here: it follows YouTube's client changes)
    ),
)
# yt-dlp's words when the media download itself (not the extraction) got a 403
_MEDIA_403 = ("unable to download video data: http error 403", "got error: http error 403")
_SIGN_IN = ("http error 401", "http error 403", "sign in", "login required", "cookies", *_BOT_CHECK)


def classify(reason: str, retry_after: float | None = None) -> DownloadError:
    """The error for yt-dlp's failure ``reason`` (redacted: it may echo a proxy's password).

    - bot check, captcha, "try again later", 429: ``RateLimitedError`` (every download pauses;
      yt-dlp's "for up to an hour" pauses an hour, or RATE_LIMIT_MAX_S);
    - upcoming premieres, live events, live-now streams: ``NotYetAvailableError`` (left pending);
    - a 403 on the media URL: ``MediaForbiddenError`` (a fresh extraction, then transient);
      any other 403: transient; both say to upgrade yt-dlp or add a PO-token provider;
    - private, removed, members-only, age-restricted, 401/404/410/451: permanent, with a reason;
    - anything else: transient.
    """
    reason = redact(reason)
    low = reason.lower()
    if any(mark in low for mark in _BOT_CHECK):
        return RateLimitedError(
            _advised(f"YouTube asks to confirm this is not a bot ({reason})"), retry_after, kind="bot_check"
        )
    if any(mark in low for mark in _CAPTCHA):  # before "video unavailable", which it is appended to
        return RateLimitedError(
            _advised(f"YouTube asks for a captcha before playback ({reason})"), retry_after, kind="captcha"
        )
    if any(mark in low for mark in _TRY_LATER):
        hour = HOUR_S if any(mark in low for mark in _HOUR) else 0.0
        return RateLimitedError(
            _advised(f"YouTube is rate-limiting this session ({reason})"),
            retry_after,
            kind="try_later",
            pause_s=hour,
        )
    if any(mark in low for mark in _RATE_LIMITED):
        return RateLimitedError(reason, retry_after, pause_s=HOUR_S if any(m in low for m in _HOUR) else 0.0)
    if any(mark in low for mark in _UPCOMING):
        return NotYetAvailableError(f"not yet available: {reason}", live_status="is_upcoming")
    if any(mark in low for mark in _LIVE_NOW):
        return NotYetAvailableError(f"live now: {reason}", live_status="is_live")
    if "did not get any data blocks" in low:  # yt-dlp's words for an empty body
        return DownloadError(f"the server sent an empty file ({reason})", permanent=True)
    if any(mark in low for mark in _MEDIA_403):
        return MediaForbiddenError(f"media URL refused (HTTP 403) ({reason}); {UPGRADE_ADVICE}")
    for marks, why in _PERMANENT_REASONS:
        if any(mark in low for mark in marks):
            return DownloadError(f"{why} ({reason})" if why else reason, permanent=True)
    if "http error 403" in low:
        return DownloadError(f"refused (HTTP 403) ({reason}); {UPGRADE_ADVICE}")
    return DownloadError(reason)


LOCAL_SCHEMES = frozenset({"file", "data", "javascript", "vbscript", "about", "blob", "filesystem"})


def media_url_refusal(url: str) -> DownloadError | None:
    """A permanent ``DownloadError`` for a media URL that names no network resource (``file:``,
    ``data:``, ``javascript:`` …: a feed can point anywhere, and yt-dlp would read a local file or
    decode a data URL), before any attempt; None otherwise (http(s), rtmp, a bare id: yt-dlp's
    call). Only the scheme is quoted, never the URL."""
    scheme, sep, _ = url.partition(":")
    scheme = scheme.strip().lower()
    if not sep or scheme not in LOCAL_SCHEMES:
        return None
    return DownloadError(
        f"not a network URL (a {scheme}: URL): only http(s) media is downloaded", permanent=True
    )


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
