"""Retry policy: which yt-dlp failures are retried, how long to wait, the shared 429 pause."""

from __future__ import annotations

import asyncio
import time

from ytingest.errors import RateLimitedError
from ytingest.stages.retry import SharedBackoff, backoff_delay, classify, parse_retry_after, sleep_unless


def test_classify_permanent_transient_and_rate_limited() -> None:
    """403/404/410/private are permanent; 5xx and resets are transient; 429 is rate-limited."""
    permanent = [
        "[generic] x: HTTP Error 404: Not Found",
        "HTTP Error 410: Gone",
        "HTTP Error 403",
        "[youtube] abc: Private video. Sign in",
        "Video unavailable",
    ]
    for reason in permanent:
        assert classify(reason).permanent, reason
    for reason in ("HTTP Error 503: Service Unavailable", "Connection reset by peer", "timed out"):
        err = classify(reason)
        assert not err.permanent and not isinstance(err, RateLimitedError), reason
    limited = classify("HTTP Error 429: Too Many Requests", retry_after=7)
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 7


def test_retry_after_as_seconds_or_http_date() -> None:
    """Retry-After is delta-seconds or an HTTP date; garbage gives None."""
    assert parse_retry_after(" 12 ") == 12.0
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= (parse_retry_after(future) or 0) <= 31
    assert parse_retry_after("soon") is None


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    """Attempt n waits within [base·2^(n-1)/2, base·2^(n-1)], never above the cap."""
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (10, 30.0)):
        delays = [backoff_delay(attempt, 1.0, 30.0) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jitter


async def test_shared_backoff_uses_retry_after_and_stops_early_on_shutdown() -> None:
    """A 429 pauses everyone for Retry-After; a stop request ends the wait at once."""
    gate = SharedBackoff(base_s=5, cap_s=60)
    assert gate.trip(0.3) == 0.3 and gate.remaining > 0.2
    stop = asyncio.Event()
    t0 = time.monotonic()
    await gate.wait(stop)
    assert 0.25 <= time.monotonic() - t0 < 1.0
    assert 2.5 <= gate.trip(None) <= 10  # second strike, no header: 5·2^(2-1) with jitter
    stop.set()
    t0 = time.monotonic()
    await gate.wait(stop)
    assert time.monotonic() - t0 < 0.1
    assert await sleep_unless(stop, 10) is True
