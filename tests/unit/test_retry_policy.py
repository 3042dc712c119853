"""Retry policy: which yt-dlp failures are retried, how long to wait, the shared 429 pause."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from anyio import CapacityLimiter
from structlog.testing import capture_logs

from ytingest.config import Settings
from ytingest.errors import DownloadError, NotYetAvailableError, RateLimitedError
from ytingest.items import AudioFile, VideoRef
from ytingest.pipeline.context import RunContext
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.download import DownloadPolicy, _download_with_retries
from ytingest.stages.pause import SharedBackoff, backoff_delay, sleep_unless
from ytingest.testing.fakes import MemoryStore
from ytingest.ytdlp.downloader import YtDlpDownloader, with_metadata
from ytingest.ytdlp.failures import classify, parse_retry_after

# yt-dlp's words for a 403 on the media download: YoutubeDL.py process_info
FORBIDDEN = "unable to download video data: HTTP Error 403: Forbidden"
# extractor/youtube/_video.py _real_extract: YouTube's reason + its _youtube_login_hint (issue #10128)
BOT = "[youtube] x: Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies"


def test_classify_permanent_transient_and_rate_limited() -> None:
    """404/410 and private are permanent; 5xx, resets and a bare 403 are transient; 429 is rate-limited."""
    permanent = [
        "[generic] x: HTTP Error 404: Not Found",
        "HTTP Error 410: Gone",
        "[youtube] abc: Private video. Sign in",
        "Video unavailable",
    ]
    for reason in permanent:
        assert classify(reason).permanent, reason
    for reason in (
        "HTTP Error 503: Service Unavailable",
        "Connection reset by peer",
        "timed out",
        "HTTP Error 403",
    ):
        err = classify(reason)
        assert not err.permanent and not isinstance(err, RateLimitedError), reason
    assert 'pip install -U "yt-dlp[default]"' in str(classify("HTTP Error 403"))
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


# --- the download stage's answers to each kind of error (a scripted downloader, the fake ledger) ---


@dataclass
class Scripted:
    """Raises the scripted errors one per attempt, then returns a file (with the given metadata)."""

    errors: list[DownloadError]
    metadata: str = ""
    calls: int = 0

    async def download(self, ref: VideoRef, dest: Path) -> AudioFile:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        path = dest / f"{ref.id}.mp3"
        path.write_bytes(b"x")
        return with_metadata(AudioFile(ref, path, 1), self.metadata)


async def _run(
    tmp_path: Path, downloader: Scripted, *, queued: int = 0, policy: DownloadPolicy | None = None
) -> tuple[AudioFile | None, RunContext, MemoryStore]:
    settings = Settings(ytingest_home=tmp_path, retry_base_s=0.01, retry_max_s=0.02, download_attempts=3)
    settings.audio_dir.mkdir(parents=True, exist_ok=True)
    db = MemoryStore()
    ctx = RunContext(settings, db, metrics_for(PIPELINE, settings))
    ctx.metrics.queued = queued  # as discovery counted it
    ref = VideoRef("vid", "http://x/vid")
    await db.register_video(ref)
    policy = policy or DownloadPolicy(CapacityLimiter(1), SharedBackoff(base_s=0.01, cap_s=0.05))
    return (
        await _download_with_retries(ctx, downloader, ref, policy, counters=ctx.metrics.stages["download"]),
        ctx,
        db,
    )


async def test_a_media_403_is_retried_once_with_a_fresh_extraction(tmp_path: Path) -> None:
    """One 403 on the media URL, then the file: stored; each attempt was a new yt-dlp run."""
    scripted = Scripted([classify("unable to download video data: HTTP Error 403: Forbidden")])
    audio, ctx, db = await _run(tmp_path, scripted)
    assert audio is not None and scripted.calls == 2 and not ctx.failures


async def test_a_second_media_403_in_a_row_is_not_permanent(tmp_path: Path) -> None:
    """403s in a row on the media URL (YoutubeDL.py process_info's words): each attempt a fresh
    extraction, DOWNLOAD_ATTEMPTS (3) in all; then failed, not permanently, with the upgrade advice."""
    scripted = Scripted([classify(FORBIDDEN) for _ in range(5)])
    with capture_logs() as logs:
        audio, ctx, db = await _run(tmp_path, scripted)
    assert audio is None and scripted.calls == 3 and db.attempts["vid"] == 3
    failed = [e for e in logs if e["event"] == "video_failed"]
    assert db.statuses["vid"] == "failed" and failed[0]["permanent"] is False
    assert all(e["wait_s"] == 0 for e in logs if e["event"] == "download_retry")  # a fresh extraction at once
    assert "gave up after 3 attempts" in db.reasons["vid"] and "yt-dlp[default]" in db.reasons["vid"]


async def test_upcoming_videos_found_at_download_are_recorded_as_waiting(tmp_path: Path) -> None:
    """A premiere that has not started: no failure, recorded as upcoming (status's waiting) as the
    listing records one, skipped, and no longer counted as queued (the dashboard's remaining)."""
    scripted = Scripted([classify("[youtube] CviUGzWvm6w: Premieres in 6 hours")])
    audio, ctx, db = await _run(tmp_path, scripted, queued=1)
    assert audio is None and scripted.calls == 1
    assert db.statuses["vid"] == "upcoming" and not ctx.failures and ctx.metrics.skipped == 1
    assert ctx.metrics.queued == 0


async def test_a_stream_live_now_is_recorded_as_live(tmp_path: Path) -> None:
    """yt-dlp's match-filter skip of a live stream: recorded as live, not recorded for half an hour."""
    line = "[download] Live now does not pass filter (!is_live), skipping .."
    audio, ctx, db = await _run(tmp_path, Scripted([classify(line)]), queued=1)
    assert audio is None and db.statuses["vid"] == "live" and ctx.metrics.queued == 0


async def test_the_downloader_skips_live_streams_and_says_so(tmp_path: Path) -> None:
    """The real downloader passes --match-filter !is_live; yt-dlp's skip (exit 0, no file, its line
    on stdout) becomes NotYetAvailableError(is_live)."""
    argv_file = tmp_path / "argv.json"
    script = (
        "import json, sys\n"
        f"json.dump(sys.argv, open({str(argv_file)!r}, 'w'))\n"
        "print('[download] Live now does not pass filter (!is_live), skipping ..')\n"
    )
    downloader = YtDlpDownloader((sys.executable, "-c", script), pick_extractor=False)
    with pytest.raises(NotYetAvailableError) as caught:
        await downloader.download(VideoRef("vid", "http://x/vid"), tmp_path)
    assert caught.value.live_status == "is_live"
    argv = json.loads(argv_file.read_text())
    assert argv[argv.index("--match-filter") + 1] == "!is_live" and "--quiet" not in argv


async def test_a_bot_check_pauses_every_download_and_counts_as_rate_limited(tmp_path: Path) -> None:
    """A bot check trips the shared pause and the rate_limited counter, then the video is stored."""
    with capture_logs() as logs:
        audio, ctx, db = await _run(tmp_path, Scripted([classify(BOT)]))
    assert audio is not None and ctx.metrics.download.rate_limited == 1
    limited = [e for e in logs if e["event"] == "rate_limited"]
    assert limited and limited[0]["kind"] == "bot_check" and "--cookies FILE" in limited[0]["reason"]


async def test_the_download_metadata_is_recorded_in_the_ledger(tmp_path: Path) -> None:
    """upload_date, channel and channel_id printed by yt-dlp reach record_metadata (date as ISO)."""
    printed = '{"upload_date": "20250131", "channel": "Some  Channel", "channel_id": "UC123"}\n'
    audio, ctx, db = await _run(tmp_path, Scripted([], metadata=printed))
    assert audio is not None and audio.upload_date == "2025-01-31"
    assert db.metadata["vid"] == {
        "upload_date": "2025-01-31",
        "channel_name": "Some Channel",
        "channel_id": "UC123",
    }


async def test_no_metadata_no_ledger_call(tmp_path: Path) -> None:
    """The generic extractor prints {}: nothing is recorded."""
    audio, ctx, db = await _run(tmp_path, Scripted([], metadata="{}\n"))
    assert audio is not None and db.metadata == {}


def test_metadata_parsing_tolerates_missing_and_odd_values(tmp_path: Path) -> None:
    """Bad dates are dropped; uploader stands in for channel; garbage lines are ignored."""
    base = AudioFile(VideoRef("v", "u"), tmp_path / "v.mp3", 1)
    odd = with_metadata(base, 'not json\n{"upload_date": "NA", "uploader": "Up", "uploader_id": "@up"}\n')
    assert (odd.upload_date, odd.channel_name, odd.channel_id) == (None, "Up", "@up")
    assert with_metadata(base, "") == base
    for bad in ('{"upload_date": "20250230"}', '{"upload_date": "20251301"}', '{"upload_date": 20250101.5}'):
        assert with_metadata(base, bad + "\n").upload_date is None, bad
    assert with_metadata(base, '{"upload_date": "20240229"}').upload_date == "2024-02-29"


# --- the shared pause: echoes, slow start, an hour, a bot check that persists, format 18 ---


async def test_a_429_from_a_download_that_began_before_the_pause_is_an_echo() -> None:
    """Six downloads in flight get a 429 together: one pause, one strike, not six."""
    pause = SharedBackoff(base_s=0.2, cap_s=10)
    stop = asyncio.Event()
    tickets = [await pause.enter(stop) for _ in range(6)]
    first = pause.trip(None, ticket=tickets[0])
    assert 0.1 <= first <= 0.2 and pause.strikes == 1
    for ticket in tickets[1:]:
        assert ticket is not None and pause.trip(None, ticket=ticket) <= first
    assert pause.strikes == 1 and pause.epoch == 1


async def test_after_a_pause_downloads_restart_one_at_a_time_then_double() -> None:
    """Slow start: one download after the pause; each that succeeds (or runs probe_s without a new
    429) lets one more in, so 1, 2, 4 … run; a new 429 starts over at one."""
    pause = SharedBackoff(base_s=0.05, cap_s=0.05, probe_s=0.3)
    stop = asyncio.Event()
    pause.trip(0.05)
    waiting = [asyncio.create_task(pause.enter(stop)) for _ in range(5)]
    await asyncio.sleep(0.15)
    let_in = [t.result() for t in waiting if t.done()]
    assert len(let_in) == 1 and let_in[0] is not None
    first = let_in[0]
    pause.success(first)  # it worked: two may be on trial now
    await asyncio.sleep(0.02)
    let_in = [t.result() for t in waiting if t.done()]
    assert len(let_in) == 3 and pause.window == 2
    for ticket in let_in:
        assert ticket is not None
        if ticket is not first:
            pause.begin(ticket)  # running: each proves after probe_s with no new 429
    await asyncio.sleep(0.4)
    assert all(t.done() for t in waiting) and pause.window == 4
    pause.trip(0.05, ticket=waiting[-1].result())
    assert pause.window == 1
    stop.set()


def test_rate_limited_for_up_to_an_hour_pauses_an_hour_capped_by_the_setting() -> None:
    """yt-dlp's "rate-limited by YouTube for up to an hour" (extractor/youtube/_video.py
    _real_extract, PR #12958) pauses 3600 s by default (RATE_LIMIT_MAX_S), or the setting."""
    text = (
        "[youtube] dQw4w9WgXcQ: This content isn't available, try again later. The current session has "
        "been rate-limited by YouTube for up to an hour. It is recommended to use `-t sleep` to add a "
        "delay between video requests to avoid exceeding the rate limit."
    )
    err = classify(text)
    assert isinstance(err, RateLimitedError) and err.pause_s == 3600
    cap = Settings().rate_limit_max_s
    assert cap == 3600
    assert SharedBackoff(base_s=5, cap_s=cap).trip(err.retry_after, pause_s=err.pause_s) >= 3600
    assert SharedBackoff(base_s=5, cap_s=300).trip(err.retry_after, pause_s=err.pause_s) == 300
    assert SharedBackoff(base_s=5, cap_s=cap).trip(None) <= 5  # a plain 429 starts small


async def test_rate_limited_tries_are_not_attempts(tmp_path: Path) -> None:
    """Ten 429s, then the file: stored, and the ledger counts one attempt (the video waited)."""
    scripted = Scripted([classify("HTTP Error 429: Too Many Requests", retry_after=0.01) for _ in range(10)])
    audio, ctx, db = await _run(tmp_path, scripted)
    assert audio is not None and scripted.calls == 11 and not ctx.failures
    assert db.attempts.get("vid", 1) == 1 and ctx.metrics.download.rate_limited == 10


async def test_a_bot_check_that_persists_stops_the_run_and_leaves_the_video_pending(tmp_path: Path) -> None:
    """BOT_CHECK_LIMIT (3) bot checks in a row, a pause between each: the run halts with advice
    (cookies from a private window, a residential address, a PO-token provider); not failed."""
    scripted = Scripted([classify(BOT) for _ in range(10)])
    with capture_logs() as logs:
        audio, ctx, db = await _run(tmp_path, scripted)
    assert audio is None and scripted.calls == 3
    assert ctx.stopping.is_set() and not ctx.failures and db.statuses["vid"] == "pending"
    assert "private browser window" in ctx.halted and "PO-token provider" in ctx.halted
    assert ctx.summary().halted == ctx.halted
    assert [e["bot_checks"] for e in logs if e["event"] == "rate_limited"] == [1, 2, 3]


async def test_a_bot_check_then_a_success_starts_the_count_again(tmp_path: Path) -> None:
    """Two bot checks, a stored video, two more: under the limit of three in a row, no halt."""
    policy = DownloadPolicy(CapacityLimiter(1), SharedBackoff(base_s=0.01, cap_s=0.05))
    audio, ctx, _ = await _run(tmp_path, Scripted([classify(BOT), classify(BOT)]), policy=policy)
    assert audio is not None and policy.backoff.bot_checks == 0
    audio, ctx, _ = await _run(tmp_path, Scripted([classify(BOT), classify(BOT)]), policy=policy)
    assert audio is not None and not ctx.halted and not ctx.stopping.is_set()


async def test_a_format_18_fallback_is_logged_once_per_run_and_stored(tmp_path: Path) -> None:
    """A downloaded format with a video codec (yt-dlp fell back from SABR-only audio to format
    18): a format_fallback warning naming a PO-token provider, once per run; the video is stored."""
    printed = '{"format_id": "18", "vcodec": "avc1.42001E"}\n'
    policy = DownloadPolicy(CapacityLimiter(1), SharedBackoff(base_s=0.01, cap_s=0.05))
    with capture_logs() as logs:
        first, _, _ = await _run(tmp_path, Scripted([], metadata=printed), policy=policy)
        second, _, _ = await _run(tmp_path, Scripted([], metadata=printed), policy=policy)
    assert first is not None and second is not None and first.video_format == "18 (avc1.42001E)"
    told = [e for e in logs if e["event"] == "format_fallback"]
    assert len(told) == 1 and told[0]["log_level"] == "warning" and "PO-token provider" in told[0]["advice"]
    audio_only = with_metadata(first, '{"format_id": "140", "vcodec": "none"}')
    assert audio_only.video_format == ""
