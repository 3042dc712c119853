"""download: one ``yt-dlp -f bestaudio/best`` subprocess per video, at most IO_WORKERS at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ytingest.childenv import child_env
from ytingest.errors import DownloadError, MediaForbiddenError, NotYetAvailableError, RateLimitedError
from ytingest.items import AudioFile, VideoRef
from ytingest.logs import get_logger
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.limiter import Limiter
from ytingest.sourcetext import CHANNEL_MAX, clean_line
from ytingest.stages.discover import last_error_line, read_all
from ytingest.stages.disk import DiskBudget, take_kept
from ytingest.stages.extractors import extractor_hint
from ytingest.stages.handoff import EarlyHandoff
from ytingest.stages.listing import upload_day_of
from ytingest.stages.pause import SharedBackoff, Ticket, backoff_delay, sleep_unless
from ytingest.stages.retry import (
    BOT_CHECK_ADVICE,
    LIVE_FILTER,
    PO_TOKEN_ADVICE,
    classify,
    media_url_refusal,
    parse_retry_after,
)
from ytingest.stages.ytdlp_options import format_given, private_cookies

log = get_logger()


class Downloader(Protocol):
    async def download(self, ref: VideoRef, dest: Path) -> AudioFile: ...


ProgressCallback = Callable[[str, int], None]
_PROGRESS = "ytingest-progress "
_RETRY_AFTER = "header: retry-after:"
# the video's own metadata, printed as JSON after the move (keys yt-dlp does not know are left out);
# format_id and vcodec tell a muxed fallback (format 18) from an audio-only format
_METADATA = "after_move:%(.{upload_date,channel,channel_id,uploader,uploader_id,format_id,vcodec})j"
FALLBACK_ADVICE = (
    "YouTube's audio-only formats need a PO token (SABR streaming), so yt-dlp fell back to a format "
    "with video (18: 360p, larger downloads, same audio track); the fix: " + PO_TOKEN_ADVICE
)


@dataclass
class YtDlpDownloader:
    """Downloads one video's best audio into ``dest/<id>.<ext>`` (``dest`` exists) with yt-dlp.

    One attempt = one yt-dlp run with its own retries off: the download stage decides about
    retries. ``on_progress(video_id, downloaded_bytes)`` follows yt-dlp's progress lines;
    ``--print-traffic`` is parsed only for a 429's Retry-After header and never logged.
    The video's upload date and channel come from a second ``--print-to-file`` (JSON).
    ``-f bestaudio/best`` unless the invocation already holds an audio-only ``-f`` (YTDLP_ARGS).
    ``--match-filter !is_live``: a stream that is live right now is not recorded until the timeout;
    yt-dlp skips it (exit 0, no file, its "does not pass filter" line on stdout, hence no
    ``--quiet``) and it becomes a ``NotYetAvailableError``. The child gets a private copy of the
    cookies file in its scratch folder (``private_cookies``).
    """

    ytdlp: tuple[str, ...] = ("yt-dlp",)
    timeout_s: float = 1800.0
    on_progress: ProgressCallback | None = None
    pick_extractor: bool = True  # pass the extractor found here (stages/extractors.py)

    async def download(self, ref: VideoRef, dest: Path) -> AudioFile:
        if (refused := media_url_refusal(ref.download_url)) is not None:  # file:, data: … never reach yt-dlp
            raise refused
        hint = await asyncio.to_thread(extractor_hint, ref.download_url) if self.pick_extractor else []
        with tempfile.TemporaryFile() as errfile, tempfile.TemporaryDirectory() as scratch:
            where, meta = Path(scratch) / "path", Path(scratch) / "meta"
            args = [
                *await asyncio.to_thread(private_cookies, self.ytdlp, Path(scratch)),
                *hint,
                *([] if format_given(self.ytdlp) else ["-f", "bestaudio/best"]),
                "--no-playlist",
                "--no-mtime",
                "--no-overwrites",
                "--restrict-filenames",
                "--retries",
                "0",
                "--fragment-retries",
                "0",
                "--extractor-retries",
                "0",
                "--match-filter",
                LIVE_FILTER,
                "-o",
                str(dest / f"{ref.id}.%(ext)s"),
                "--print-to-file",
                "after_move:filepath",
                str(where),
                "--print-to-file",
                _METADATA,
                str(meta),
                "--print-traffic",
                "--progress",
                "--newline",
                "--progress-template",
                f"download:{_PROGRESS}%(progress.downloaded_bytes)s",
                "--",
                ref.download_url,  # with the listing's credential, if any: never logged
            ]
            try:
                proc = await asyncio.create_subprocess_exec(
                    *args, stdout=asyncio.subprocess.PIPE, stderr=errfile, env=child_env()
                )
            except OSError as exc:
                raise DownloadError(f"cannot run {self.ytdlp[0]}: {exc.strerror or exc}") from None
            try:
                async with asyncio.timeout(self.timeout_s):
                    retry_after, filtered = await self._read_output(proc, ref.id)
                    await proc.wait()
            except TimeoutError:
                raise DownloadError(f"download took longer than {self.timeout_s:.0f}s") from None
            finally:
                if proc.returncode is None:  # timeout or cancellation: reap the child
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await asyncio.shield(proc.wait())
            if proc.returncode != 0:
                raise classify(last_error_line(read_all(errfile)), retry_after)
            printed = where.read_text(errors="replace") if where.exists() else ""
            metadata = meta.read_text(errors="replace") if meta.exists() else ""
        if filtered and not printed.strip():  # skipped by --match-filter: live right now
            raise classify(filtered)
        audio = _checked_file(printed, dest, ref)
        return with_metadata(audio, metadata)

    async def _read_output(self, proc: asyncio.subprocess.Process, video_id: str) -> tuple[float | None, str]:
        """Report progress; return the last Retry-After the site sent, if any, and yt-dlp's
        "does not pass filter (!is_live)" line, if it printed one."""
        assert proc.stdout is not None
        retry_after, filtered = None, ""
        while line := (await proc.stdout.readline()).decode(errors="replace"):
            if line.startswith(_PROGRESS):
                value = line[len(_PROGRESS) :].strip()
                if self.on_progress is not None and value.isdigit():
                    self.on_progress(video_id, int(value))
            elif line.lower().startswith(_RETRY_AFTER):
                retry_after = parse_retry_after(line[len(_RETRY_AFTER) :])
            elif f"does not pass filter ({LIVE_FILTER})" in line:
                filtered = line.strip()
        return retry_after, filtered


def _checked_file(printed: str, dest: Path, ref: VideoRef) -> AudioFile:
    """The file yt-dlp says it wrote, if it is inside ``dest`` and not empty."""
    lines = [ln for ln in printed.splitlines() if ln.strip()]
    if not lines:
        raise DownloadError("yt-dlp finished without writing a file")
    path = Path(lines[-1].strip()).resolve()
    if not path.is_relative_to(dest.resolve()):
        raise DownloadError("yt-dlp wrote outside the audio folder; refusing the file")
    try:
        size = path.stat().st_size
    except OSError:
        raise DownloadError("downloaded file is missing") from None
    if size == 0:
        path.unlink(missing_ok=True)
        raise DownloadError("downloaded file is empty", permanent=True)
    return AudioFile(video=ref, path=path, size=size)


def with_metadata(audio: AudioFile, printed: str) -> AudioFile:
    """``audio`` with the upload date (ISO), channel and, when it carries video, the format, from
    yt-dlp's printed JSON, where known (the text cleaned: ``sourcetext.clean_line``)."""
    info: dict[str, Any] = {}
    for line in reversed(printed.splitlines()):
        try:
            loaded = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(loaded, dict):
            info = loaded
            break
    day = upload_day_of(info.get("upload_date"), info.get("timestamp"))
    name = info.get("channel") or info.get("uploader") or ""
    channel_id = info.get("channel_id") or info.get("uploader_id") or ""
    vcodec = str(info.get("vcodec") or "none")
    return replace(
        audio,
        upload_date=day or audio.upload_date,
        channel_name=clean_line(name, CHANNEL_MAX) or audio.channel_name,
        channel_id=clean_line(channel_id, 100) or audio.channel_id,
        video_format=""
        if vcodec == "none"
        else clean_line(f"{info.get('format_id') or '?'} ({vcodec})", 100),
    )


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

    slots: Limiter
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
) -> None:
    """Start one download task per video, never more than ``slots.limit`` (IO_WORKERS) at once;
    return once the inbox has ended and every download has finished.

    A finished file waits for room in ``outbox`` while still holding its slot:
    that is the backpressure that bounds the files on disk.
    """
    async with asyncio.TaskGroup() as downloads:
        while (ref := await inbox.get()) is not None:
            await policy.slots.acquire()
            if ctx.stopping.is_set():
                await policy.slots.release()
                ctx.settle(ref.id, "released")
                continue  # left pending in the ledger; the next run picks it up
            task = _download_one(ctx, downloader, ref, outbox, policy)
            downloads.create_task(task, name=f"download:{ref.id}")


async def _download_one(
    ctx: RunContext,
    downloader: Downloader,
    ref: VideoRef,
    outbox: asyncio.Queue[AudioFile | None],
    policy: DownloadPolicy,
) -> None:
    ctx.metrics.download.audio[ref.id] = ref.duration or 0.0  # still to transcribe (the ETA)
    # decoded while it downloads (stages/handoff.py); not in bulk mode, which decodes in a later phase
    streaming = ctx.settings.decode_while_downloading and ctx.settings.mode == "stream"
    early = EarlyHandoff(ctx, ref, outbox) if streaming else None
    try:
        audio = await _kept_audio(ctx, ref) or await _download_with_retries(
            ctx, downloader, ref, policy, early
        )
        if early is not None:
            audio = await early.finish(audio)
        if audio is not None:
            await outbox.put(audio)
    finally:
        if early is not None:
            early.close()
        ctx.metrics.download.audio.pop(ref.id, None)
        await policy.slots.release()


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
) -> AudioFile | None:
    """Transient errors: exponential backoff with jitter, DOWNLOAD_ATTEMPTS in all. A 403 (media or
    page) is transient too: the next attempt is a fresh extraction. 429, bot check, captcha, "try
    again later": the shared pause, then again, and the try is not an attempt (the video waits
    through the pause); BOT_CHECK_LIMIT bot checks in a row stop the run (``halt``). Upcoming/live
    now: recorded as upcoming/live for a later run. Permanent errors: no retry. None when the
    video failed, was left for later, or the run is stopping (it stays pending)."""
    s, counters, vlog = ctx.settings, ctx.metrics.stages["download"], log.bind(video_id=ref.id)
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
                await ctx.fail(ref, "download", f"{exc} ({why})", permanent=exc.permanent)
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
