"""download: one ``yt-dlp -f bestaudio/best`` subprocess per video, at most IO_WORKERS at once."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ytingest.errors import DownloadError, RateLimitedError
from ytingest.items import AudioFile, VideoRef
from ytingest.logs import get_logger
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.limiter import Limiter
from ytingest.stages.discover import last_error_line, read_all
from ytingest.stages.disk import DiskBudget
from ytingest.stages.extractors import extractor_hint
from ytingest.stages.retry import SharedBackoff, backoff_delay, classify, parse_retry_after, sleep_unless

log = get_logger()


class Downloader(Protocol):
    async def download(self, ref: VideoRef, dest: Path) -> AudioFile: ...


ProgressCallback = Callable[[str, int], None]
_PROGRESS = "ytingest-progress "
_RETRY_AFTER = "header: retry-after:"


@dataclass
class YtDlpDownloader:
    """Downloads one video's best audio into ``dest/<id>.<ext>`` (``dest`` exists) with yt-dlp.

    One attempt = one yt-dlp run with its own retries off: the download stage decides about
    retries. ``on_progress(video_id, downloaded_bytes)`` follows yt-dlp's progress lines;
    ``--print-traffic`` is parsed only for a 429's Retry-After header and never logged.
    """

    ytdlp: tuple[str, ...] = ("yt-dlp",)
    timeout_s: float = 1800.0
    on_progress: ProgressCallback | None = None
    pick_extractor: bool = True  # pass the extractor found here (stages/extractors.py)

    async def download(self, ref: VideoRef, dest: Path) -> AudioFile:
        hint = await asyncio.to_thread(extractor_hint, ref.url) if self.pick_extractor else []
        with tempfile.TemporaryFile() as errfile, tempfile.TemporaryDirectory() as scratch:
            where = Path(scratch) / "path"
            args = [
                *self.ytdlp,
                *hint,
                "-f",
                "bestaudio/best",
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
                "-o",
                str(dest / f"{ref.id}.%(ext)s"),
                "--print-to-file",
                "after_move:filepath",
                str(where),
                "--quiet",
                "--print-traffic",
                "--progress",
                "--newline",
                "--progress-template",
                f"download:{_PROGRESS}%(progress.downloaded_bytes)s",
                "--",
                ref.url,
            ]
            try:
                proc = await asyncio.create_subprocess_exec(
                    *args, stdout=asyncio.subprocess.PIPE, stderr=errfile
                )
            except OSError as exc:
                raise DownloadError(f"cannot run {self.ytdlp[0]}: {exc.strerror or exc}") from None
            try:
                async with asyncio.timeout(self.timeout_s):
                    retry_after = await self._read_output(proc, ref.id)
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
        return _checked_file(printed, dest, ref)

    async def _read_output(self, proc: asyncio.subprocess.Process, video_id: str) -> float | None:
        """Report progress; return the last Retry-After the site sent, if any."""
        assert proc.stdout is not None
        retry_after = None
        while line := (await proc.stdout.readline()).decode(errors="replace"):
            if line.startswith(_PROGRESS):
                value = line[len(_PROGRESS) :].strip()
                if self.on_progress is not None and value.isdigit():
                    self.on_progress(video_id, int(value))
            elif line.lower().startswith(_RETRY_AFTER):
                retry_after = parse_retry_after(line[len(_RETRY_AFTER) :])
        return retry_after


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


@dataclass
class DownloadPolicy:
    """Shared by every download of a run: the slots, the 429 pause and the disk budget."""

    slots: Limiter
    backoff: SharedBackoff
    disk: DiskBudget | None = None


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
    try:
        audio = await _download_with_retries(ctx, downloader, ref, policy)
        if audio is not None:
            await outbox.put(audio)
    finally:
        await policy.slots.release()


async def _download_with_retries(
    ctx: RunContext, downloader: Downloader, ref: VideoRef, policy: DownloadPolicy
) -> AudioFile | None:
    """Transient errors: exponential backoff with jitter, DOWNLOAD_ATTEMPTS in all. 429: the
    shared pause, then again. Permanent errors: no retry. None when the video failed or the
    run is stopping (it stays pending)."""
    s, counters, vlog = ctx.settings, ctx.metrics.stages["download"], log.bind(video_id=ref.id)
    attempt = 0
    while True:
        if policy.disk is not None:
            await policy.disk.wait_for_room(ctx.stopping)
        await policy.backoff.wait(ctx.stopping)
        if ctx.stopping.is_set():
            return None
        attempt += 1
        if attempt > 1:
            await ctx.ledger.count_attempt(ref.id)
        vlog.info("download_start", url=ref.webpage_url or ref.url, attempt=attempt)
        started = counters.begin()
        try:
            audio = await downloader.download(ref, s.audio_dir)
        except RateLimitedError as exc:
            counters.end(started, ok=False)
            ctx.metrics.download.rate_limited += 1
            pause = policy.backoff.trip(exc.retry_after)
            vlog.warning(
                "rate_limited", pause_s=round(pause, 1), retry_after=exc.retry_after, attempt=attempt
            )
            if attempt >= s.download_attempts * 3:
                await ctx.fail(ref, "download", f"{exc} (rate-limited {attempt} times)")
                return None
            continue
        except DownloadError as exc:
            counters.end(started, ok=False)
            if exc.permanent or attempt >= s.download_attempts:
                why = "permanent" if exc.permanent else f"gave up after {attempt} attempts"
                await ctx.fail(ref, "download", f"{exc} ({why})", permanent=exc.permanent)
                return None
            delay = backoff_delay(attempt, s.retry_base_s, s.retry_max_s)
            vlog.warning("download_retry", reason=str(exc), attempt=attempt, wait_s=round(delay, 2))
            await sleep_unless(ctx.stopping, delay)
            continue
        finally:
            ctx.metrics.download.finished(ref.id)
        policy.backoff.success()
        counters.end(started)
        vlog.info("download_done", bytes=audio.size, ms=round(1000 * (time.monotonic() - started)))
        return audio
