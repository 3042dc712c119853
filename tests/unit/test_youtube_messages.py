"""yt-dlp's own YouTube messages, classified: each kind of answer gets the treatment it needs.

The texts are yt-dlp's as users see them. Where yt-dlp builds a message, the comment names the
source file (yt_dlp/...); where it passes YouTube's own playability reason through
(extractor/youtube/_video.py ``raise_no_formats(reason, expected=True)``), the text is the one
yt-dlp prints for it, as quoted in yt-dlp's issue tracker.
"""

from __future__ import annotations

import pytest

from ytingest.errors import MediaForbiddenError, NotYetAvailableError, RateLimitedError
from ytingest.ytdlp.failures import classify, listing_hint
from ytingest.ytdlp.lister import last_error_line

# extractor/common.py _login_hint(method="cookies") + extractor/youtube/_base.py _youtube_login_hint
LOGIN_HINT = (
    "Use --cookies-from-browser or --cookies for the authentication. See  "
    "https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to manually "
    "pass cookies. Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies"
    "  for tips on effectively exporting YouTube cookies"
)
# _video.py: a reason containing "sign in" gets "<reason>. <login hint>" (YouTube's curly apostrophe)
BOT_CHECK = f"ERROR: [youtube] tpUr8xVxj-w: Sign in to confirm you’re not a bot. {LOGIN_HINT}"
# _video.py _real_extract: a playerCaptchaViewModel appends yt-dlp's sentence to YouTube's reason
# ("Video unavailable"), PR #12939
CAPTCHA = (
    "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. "
    "YouTube is requiring a captcha challenge before playback"
)
# _video.py _real_extract: "This content isn't available, try again later" gets yt-dlp's rate-limit
# explanation (PR #12958); "Your account" instead of "The current session" when signed in
TRY_LATER = (
    "ERROR: [youtube] dQw4w9WgXcQ: This content isn't available, try again later. The current session "
    "has been rate-limited by YouTube for up to an hour. It is recommended to use `-t sleep` to add a "
    "delay between video requests to avoid exceeding the rate limit. For more information, refer to  "
    "https://github.com/yt-dlp/yt-dlp/wiki/Extractors#this-content-isnt-available-try-again-later"
)
# networking/exceptions.py HTTPError: "HTTP Error {status}: {reason}"
TOO_MANY = "ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: HTTP Error 429: Too Many Requests"
# YoutubeDL.py process_info: report_error(f'unable to download video data: {err}') (issue #17458:
# android_vr's media 403s from 2026-08-17, a client change)
MEDIA_403 = "ERROR: unable to download video data: HTTP Error 403: Forbidden"
# downloader/common.py: report_error(f'\r[download] Got error: {e}') (fatal retry)
MEDIA_403_RETRY = "ERROR: \r[download] Got error: HTTP Error 403: Forbidden"
PRIVATE = (
    "ERROR: [youtube] abcdefghijk: Private video. Sign in if you've been granted access to this video. "
    + LOGIN_HINT
)
MEMBERS = (
    "ERROR: [youtube] h7aSM88pUv8: Join this channel to get access to members-only content like this "
    "video, and other exclusive perks."
)
REMOVED = "ERROR: [youtube] abcdefghijk: This video has been removed by the uploader"
# _video.py _TESTS 'skip' text
REMOVED_POLICY = (
    "ERROR: [youtube] abcdefghijk: This video has been removed for violating YouTube's policy on hate speech."
)
TERMINATED = (
    "ERROR: [youtube] abcdefghijk: This video is no longer available because the YouTube account "
    "associated with this video has been terminated."
)
# _video.py _is_agegated: 'confirm your age', 'age-restricted', 'inappropriate'
AGE = (
    "ERROR: [youtube] abcdefghijk: Sign in to confirm your age. This video may be inappropriate for "
    f"some users. {LOGIN_HINT}"
)
UPCOMING = "ERROR: [youtube+GetPOT] zDDmqpnkPy8: This live event will begin in 2 days."
PREMIERE = "ERROR: [youtube+GetPOT] CviUGzWvm6w: Premieres in 6 hours"
# yt_dlp/cookies.py: a cookies file that is not in Netscape format
BAD_COOKIES = "ERROR: '/home/me/secret/cookies.txt' does not look like a Netscape format cookies file"


def reason(stderr: str) -> str:
    """What the downloader hands to ``classify``: yt-dlp's last ERROR line, prefix removed."""
    return last_error_line(stderr)


@pytest.mark.parametrize(
    ("text", "kind"),
    [(BOT_CHECK, "bot_check"), (CAPTCHA, "captcha"), (TRY_LATER, "try_later"), (TOO_MANY, "429")],
)
def test_bot_check_try_again_later_and_429_trip_the_shared_pause(text: str, kind: str) -> None:
    """Bot check, "try again later" and 429 are rate limits (the shared pause), never permanent."""
    err = classify(reason(text))
    assert isinstance(err, RateLimitedError) and err.kind == kind and not err.permanent


def test_bot_check_matches_every_apostrophe_and_names_the_fix() -> None:
    """Straight and curly apostrophes alike; the message names cookies, a slower rate and IO_WORKERS."""
    for text in (BOT_CHECK, BOT_CHECK.replace("’", "'")):
        err = classify(reason(text))
        assert isinstance(err, RateLimitedError) and err.kind == "bot_check"
        assert "--cookies FILE" in str(err) and "--sleep-requests" in str(err) and "IO_WORKERS" in str(err)


def test_a_403_is_never_permanent_and_says_to_upgrade_yt_dlp() -> None:
    """The media download's 403 gets a fresh extraction (MediaForbiddenError); a page's or the API's
    (extractor/common.py _request_webpage, youtube/_base.py _call_api) is transient; each names the
    fix for YouTube's client changes: upgrade yt-dlp, or a PO-token provider."""
    assert reason(MEDIA_403_RETRY) == "[download] Got error: HTTP Error 403: Forbidden"  # the \r joined
    for text in (reason(MEDIA_403), reason(MEDIA_403_RETRY)):
        err = classify(text)
        assert isinstance(err, MediaForbiddenError) and not err.permanent, text
    pages = (
        "[generic] x: Unable to download webpage: HTTP Error 403: Forbidden",
        "[youtube] dQw4w9WgXcQ: Unable to download API page: HTTP Error 403: Forbidden",
    )
    for text in (reason(MEDIA_403), *pages):
        err = classify(text)
        assert not err.permanent and not isinstance(err, RateLimitedError), text
        assert 'pip install -U "yt-dlp[default]"' in str(err) and "PO-token provider" in str(err)


def test_a_captcha_is_a_bot_check_not_an_unavailable_video() -> None:
    """yt-dlp appends the captcha sentence to "Video unavailable" (_video.py, PR #12939): a bot
    check (the shared pause, the cookies advice), never the permanent "video unavailable"."""
    err = classify(reason(CAPTCHA))
    assert isinstance(err, RateLimitedError) and err.kind == "captcha" and err.bot_check
    assert not err.permanent and "--cookies FILE" in str(err)
    assert classify("[youtube] x: Video unavailable").permanent  # without the captcha: gone


@pytest.mark.parametrize("who", ["The current session", "Your account"])
def test_rate_limited_for_up_to_an_hour_asks_for_an_hours_pause(who: str) -> None:
    """yt-dlp's "has been rate-limited by YouTube for up to an hour" (_video.py, PR #12958), signed
    out or in: a rate limit whose pause is at least an hour; a bare "try again later" is not."""
    err = classify(reason(TRY_LATER.replace("The current session", who)))
    assert isinstance(err, RateLimitedError) and err.kind == "try_later" and err.pause_s == 3600
    bare = classify("[youtube] x: This content isn't available, try again later.")
    assert isinstance(bare, RateLimitedError) and bare.pause_s == 0


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (PRIVATE, "private video"),
        (MEMBERS, "members-only video"),
        (REMOVED, "removed video"),
        (REMOVED_POLICY, "removed video"),
        (TERMINATED, "removed: the account was terminated"),
        (AGE, "age-restricted"),
    ],
)
def test_private_removed_members_only_and_age_restricted_fail_with_their_own_reason(
    text: str, why: str
) -> None:
    """Each is permanent, with a reason that says which it is (age-restricted says: cookies)."""
    err = classify(reason(text))
    assert err.permanent and not isinstance(err, RateLimitedError), text
    assert str(err).startswith(why), str(err)
    if why == "age-restricted":
        assert "--cookies" in str(err)


def test_a_stream_live_now_skipped_by_the_match_filter_is_not_yet_available() -> None:
    """The download's --match-filter "!is_live" line (utils/_utils.py match_filter_func, printed by
    YoutubeDL._match_entry) is NotYetAvailableError for a live stream, not a failure."""
    line = "[download] Lofi radio 24/7 does not pass filter (!is_live), skipping .."
    err = classify(line)
    assert isinstance(err, NotYetAvailableError) and not err.permanent
    assert err.live_status == "is_live"


@pytest.mark.parametrize("text", [UPCOMING, PREMIERE])
def test_upcoming_live_events_and_premieres_are_not_failures(text: str) -> None:
    """A scheduled live event or premiere is NotYetAvailableError: left pending, not failed."""
    err = classify(reason(text))
    assert isinstance(err, NotYetAvailableError) and not err.permanent
    assert err.live_status == "is_upcoming"


def test_plain_network_errors_stay_transient() -> None:
    """5xx and connection errors are transient: retried with backoff, not paused, not final."""
    for text in ("HTTP Error 503: Service Unavailable", "[Errno 104] Connection reset by peer"):
        err = classify(text)
        assert type(err).__name__ == "DownloadError" and not err.permanent


def test_secrets_in_yt_dlp_messages_never_reach_the_reason() -> None:
    """A proxy password and a cookies file path echoed by yt-dlp are masked in the failure reason."""
    proxied = classify(
        "[youtube] x: Unable to download webpage: ('Unable to connect to proxy http://bob:s3cret@10.0.0.1:3128')"
    )
    assert "s3cret" not in str(proxied) and "bob:***@" in str(proxied)
    cookies = classify(reason(BAD_COOKIES))
    assert "/home/me/secret" not in str(cookies) and "cookies file" in str(cookies)


def test_a_refused_listing_gets_the_cookies_hint() -> None:
    """401/403, a bot check or "sign in" on the listing add the cookies advice; a 404 does not."""
    assert "--cookies FILE" in listing_hint(
        "[generic] feed: Unable to download webpage: HTTP Error 403: Forbidden"
    )
    assert "--cookies-from-browser" in listing_hint(reason(BOT_CHECK))
    assert listing_hint("[generic] feed: Unable to download webpage: HTTP Error 404: Not Found") == ""
