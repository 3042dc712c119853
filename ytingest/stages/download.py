"""download: one ``yt-dlp -f bestaudio/best`` subprocess per video, at most IO_WORKERS at once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

from anyio import CapacityLimiter

from ytingest.errors import DownloadError, MediaForbiddenError, NotYetAvailableError, RateLimitedError
from ytingest.items import AudioFile, VideoRef
from ytingest.logs import get_logger
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.counters import StageCounters
from ytingest.ports import Downloader
from ytingest.stages.disk import DiskBudget, take_kept
from ytingest.stages.handoff import EarlyHandoff
from ytingest.stages.pause import SharedBackoff, Ticket, backoff_delay, sleep_unless
from ytingest.ytdlp.downloader import FALLBACK_ADVICE
from ytingest.ytdlp.failures import (
    BOT_CHECK_ADVICE,
)

log = get_logger()


class GlobalGate(Protocol):
    """A download budget shared with other processes (a cluster's ``cluster.gate.DownloadGate``)."""

    async def enter(self, stop: asyncio.Event) -> Any | None: ...  # a pass to download; None: stopping
    async def leave(self, held: Any) -> None: ...
    async def pause(self, seconds: float, reason: str) -> None: ...  # a 429: every process waits


@dataclass
class DownloadPolicy:
    """Shared by every download of a run: the slots, the 429 pause, the disk budget and, in a
    cluster, the global gate (a slot there too, the global pace, and a 429 pauses every worker).
    ``fallback_told``: the format fallback was logged (once per run)."""

    slots: CapacityLimiter  # each download holds one, on behalf of its own token (Tuning.downloads)
    backoff: SharedBackoff
    disk: DiskBudget | None = None
    gate: GlobalGate | None = None
    fallback_told: bool = False


async def run_downloads(
    ctx: RunContext,
    downloader: Downloader,
    inbox: asyncio.Queue[VideoRef | None],
    outbox: asyncio.Queue[AudioFile | None],
    policy: DownloadPolicy,
    counters: StageCounters,
) -> None:
    """Start one download task per video, never more than ``slots.total_tokens`` (IO_WORKERS) at once;
    return once the inbox has ended and every download has finished.

    A finished file waits for room in ``outbox`` while still holding its slot:
    that is the backpressure that bounds the files on disk.
    """
    async with asyncio.TaskGroup() as downloads:
        while (ref := await inbox.get()) is not None:
            slot = object()  # the task started below releases it, so it borrows on behalf of a token
            await policy.slots.acquire_on_behalf_of(slot)
            if ctx.stopping.is_set():
                policy.slots.release_on_behalf_of(slot)
                ctx.settle(ref.id, "released")
                continue  # left pending in the ledger; the next run picks it up
            task = _download_one(ctx, downloader, ref, outbox, policy, slot, counters)
            downloads.create_task(task, name=f"download:{ref.id}")


async def _download_one(
    ctx: RunContext,
    downloader: Downloader,
    ref: VideoRef,
    outbox: asyncio.Queue[AudioFile | None],
    policy: DownloadPolicy,
    slot: object,
    counters: StageCounters,
) -> None:
    ctx.metrics.download.audio[ref.id] = ref.duration or 0.0  # still to transcribe (the ETA)
    # decoded while it downloads (stages/handoff.py); not in bulk mode, which decodes in a later phase
    streaming = ctx.settings.decode_while_downloading and ctx.settings.mode == "stream"
    early = EarlyHandoff(ctx, ref, outbox, counters.name) if streaming else None
    try:
        audio = await _kept_audio(ctx, ref) or await _download_with_retries(
            ctx, downloader, ref, policy, early, counters=counters
        )
        if early is not None:
            audio = await early.finish(audio)
        if audio is not None:
            await outbox.put(audio)
    finally:
        if early is not None:
            early.close()
        ctx.metrics.download.audio.pop(ref.id, None)
        policy.slots.release_on_behalf_of(slot)


async def _kept_audio(ctx: RunContext, ref: VideoRef) -> AudioFile | None:
    """The audio a model failure kept for this retry (``kept/``), instead of downloading it again."""
    s = ctx.settings
    path = await asyncio.to_thread(take_kept, ref.id, s.kept_dir, s.audio_dir)
    if path is None:
        return None
    size = (await asyncio.to_thread(path.stat)).st_size
    log.info("download_reused", video_id=ref.id, bytes=size, reason="audio kept by an earlier model failure")
    return AudioFile(ref, path, size)


async def _download_with_retries(
    ctx: RunContext,
    downloader: Downloader,
    ref: VideoRef,
    policy: DownloadPolicy,
    early: EarlyHandoff | None = None,
    *,
    counters: StageCounters,
) -> AudioFile | None:
    """Transient errors: exponential backoff with jitter, DOWNLOAD_ATTEMPTS in all. A 403 (media or
    page) is transient too: the next attempt is a fresh extraction. 429, bot check, captcha, "try
    again later": the shared pause, then again, and the try is not an attempt (the video waits
    through the pause); BOT_CHECK_LIMIT bot checks in a row stop the run (``halt``). Upcoming/live
    now: recorded as upcoming/live for a later run. Permanent errors: no retry. None when the
    video failed, was left for later, or the run is stopping (it stays pending)."""
    s, vlog = ctx.settings, log.bind(video_id=ref.id)
    attempt = 0
    limited = False  # the previous try was rate-limited: this one is not a new attempt
    while True:
        if policy.disk is not None:
            await policy.disk.wait_for_room(ctx.stopping)
        ticket = await policy.backoff.enter(ctx.stopping)
        passed = await policy.gate.enter(ctx.stopping) if policy.gate is not None and ticket else None
        while ticket is not None and passed is not None and ticket.epoch != policy.backoff.epoch:
            policy.backoff.leave(ticket)  # a pause began while the gate held us: it comes first
            ticket = await policy.backoff.enter(ctx.stopping)
        if ctx.stopping.is_set() or ticket is None or (policy.gate is not None and passed is None):
            if ticket is not None:
                policy.backoff.leave(ticket)
            if passed is not None and policy.gate is not None:
                await policy.gate.leave(passed)
            ctx.settle(ref.id, "released")
            return None
        if not limited:
            attempt += 1
            if attempt > 1:
                await ctx.ledger.count_attempt(ref.id)
        limited = False
        vlog.info("download_start", url=ref.webpage_url or ref.url, attempt=attempt)
        policy.backoff.begin(ticket)
        started = counters.begin()
        try:
            attempt_done = downloader.download(ref, s.audio_dir)
            audio = await (early.during(attempt_done) if early is not None else attempt_done)
        except RateLimitedError as exc:
            counters.end(started, ok=False)
            limited = True
            await _rate_limited(ctx, policy, ticket, exc, vlog.bind(attempt=attempt))
            continue
        except NotYetAvailableError as exc:
            counters.end(started, ok=False)
            ctx.metrics.skipped += 1
            ctx.metrics.queued -= 1  # not remaining in this run: skipped, as the listing skips one
            vlog.info("video_not_yet_available", live_status=exc.live_status, reason=str(exc))
            # recorded as upcoming/live (status's waiting), as the listing records one; a later run takes it
            await ctx.ledger.register_video(replace(ref, live_status=exc.live_status))
            ctx.settle(ref.id, "waiting")
            return None
        except DownloadError as exc:
            counters.end(started, ok=False)
            if exc.permanent or attempt >= s.download_attempts:
                why = "permanent" if exc.permanent else f"gave up after {attempt} attempts"
                await ctx.fail(ref, counters.name, f"{exc} ({why})", permanent=exc.permanent)
                return None
            # a 403 on the media URL: the next yt-dlp run extracts a fresh one, at once
            fresh = isinstance(exc, MediaForbiddenError)
            delay = 0.0 if fresh else backoff_delay(attempt, s.retry_base_s, s.retry_max_s)
            vlog.warning("download_retry", reason=str(exc), attempt=attempt, wait_s=round(delay, 2))
            if policy.gate is not None:  # the global slot is not held while waiting to retry
                await policy.gate.leave(passed)
                passed = None
            policy.backoff.leave(ticket)  # nor a slow-start place
            await sleep_unless(ctx.stopping, delay)
            continue
        else:
            policy.backoff.success(ticket)
        finally:
            ctx.metrics.download.finished(ref.id)
            policy.backoff.leave(ticket)
            if policy.gate is not None and passed is not None:
                await policy.gate.leave(passed)
        counters.end(started)
        vlog.info("download_done", bytes=audio.size, ms=round(1000 * (time.monotonic() - started)))
        if audio.video_format and not policy.fallback_told:
            policy.fallback_told = True
            vlog.warning("format_fallback", format=audio.video_format, advice=FALLBACK_ADVICE)
        if audio.upload_date or audio.channel_name or audio.channel_id:
            await ctx.ledger.record_metadata(
                ref.id,
                upload_date=audio.upload_date,
                channel_name=audio.channel_name,
                channel_id=audio.channel_id,
            )
        return audio


async def _rate_limited(
    ctx: RunContext, policy: DownloadPolicy, ticket: Ticket, exc: RateLimitedError, vlog: Any
) -> None:
    """The shared pause (an echo of the current one, from a download that began before it, adds
    nothing); a bot check that persists through BOT_CHECK_LIMIT pauses stops the run."""
    ctx.metrics.download.rate_limited += 1
    backoff = policy.backoff
    echo = ticket.epoch != backoff.epoch
    pause = backoff.trip(exc.retry_after, ticket=ticket, bot_check=exc.bot_check, pause_s=exc.pause_s)
    vlog.warning(
        "rate_limited",
        kind=exc.kind,
        reason=str(exc),
        pause_s=round(pause, 1),
        retry_after=exc.retry_after,
        echo=echo,
        bot_checks=backoff.bot_checks,
    )
    if policy.gate is not None and not echo:
        await policy.gate.pause(pause, exc.kind)
    if exc.bot_check and backoff.bot_checks >= ctx.settings.bot_check_limit:
        ctx.halt(f"{BOT_CHECK_ADVICE} ({backoff.bot_checks} bot checks in a row, a pause between each)")
