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

import structlog

from ytingest.errors import DownloadError, RateLimitedError
from ytingest.items import AudioFile, VideoRef
from ytingest.run import RunContext
from ytingest.stages.discover import last_error_line, read_all
from ytingest.stages.limiter import Limiter

log = structlog.get_logger("ytingest")


class Downloader(Protocol):
    async def download(self, ref: VideoRef, dest: Path) -> AudioFile: ...


ProgressCallback = Callable[[str, int], None]
_PROGRESS = "ytingest-progress "
_RATE_LIMITED = ("HTTP Error 429", "Too Many Requests", "rate-limit", "rate limit")


@dataclass
class YtDlpDownloader:
    """Downloads one video's best audio into ``dest/<id>.<ext>`` (``dest`` exists) with yt-dlp.

    ``on_progress(video_id, downloaded_bytes)`` is called as yt-dlp reports progress.
    """

    ytdlp: tuple[str, ...] = ("yt-dlp",)
    timeout_s: float = 1800.0
    on_progress: ProgressCallback | None = None

    async def download(self, ref: VideoRef, dest: Path) -> AudioFile:
        args = [
            *self.ytdlp, "-f", "bestaudio/best", "--no-playlist", "--no-mtime", "--no-overwrites",
            "--restrict-filenames", "-o", str(dest / f"{ref.id}.%(ext)s"),
            "--print", "after_move:filepath",
            "--progress", "--newline", "--progress-template",
            f"download:{_PROGRESS}%(progress.downloaded_bytes)s",
            "--", ref.url,
        ]  # fmt: skip
        with tempfile.TemporaryFile() as errfile:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *args, stdout=asyncio.subprocess.PIPE, stderr=errfile
                )
            except OSError as exc:
                raise DownloadError(f"cannot run {self.ytdlp[0]}: {exc.strerror or exc}") from None
            try:
                async with asyncio.timeout(self.timeout_s):
                    printed = await self._read_output(proc, ref.id)
                    await proc.wait()
            except TimeoutError:
                raise DownloadError(f"download took longer than {self.timeout_s:.0f}s") from None
            finally:
                if proc.returncode is None:  # timeout or cancellation: reap the child
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await asyncio.shield(proc.wait())
            if proc.returncode != 0:
                reason = last_error_line(read_all(errfile))
                if any(mark in reason for mark in _RATE_LIMITED):
                    raise RateLimitedError(reason)
                raise DownloadError(reason)
        return _checked_file(printed, dest, ref)

    async def _read_output(self, proc: asyncio.subprocess.Process, video_id: str) -> str:
        """Report progress lines; return the rest (the file path yt-dlp printed)."""
        assert proc.stdout is not None
        rest = []
        while line := (await proc.stdout.readline()).decode(errors="replace"):
            if line.startswith(_PROGRESS):
                value = line[len(_PROGRESS) :].strip()
                if self.on_progress is not None and value.isdigit():
                    self.on_progress(video_id, int(value))
            else:
                rest.append(line)
        return "".join(rest)


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
        raise DownloadError("downloaded file is empty")
    return AudioFile(video=ref, path=path, size=size)


async def run_downloads(
    ctx: RunContext,
    downloader: Downloader,
    inbox: asyncio.Queue[VideoRef | None],
    outbox: asyncio.Queue[AudioFile | None],
    tg: asyncio.TaskGroup,
    slots: Limiter,
) -> None:
    """Start one download task per video, never more than ``slots.limit`` (IO_WORKERS) at once.

    A finished file waits for room in ``outbox`` while still holding its slot:
    that is the backpressure that bounds the files on disk.
    """
    while (ref := await inbox.get()) is not None:
        await slots.acquire()
        if ctx.stopping.is_set():
            await slots.release()
            continue  # left pending in the ledger; the next run picks it up
        tg.create_task(_download_one(ctx, downloader, ref, outbox, slots), name=f"download:{ref.id}")
    await slots.wait_idle()
    await outbox.put(None)


async def _download_one(
    ctx: RunContext,
    downloader: Downloader,
    ref: VideoRef,
    outbox: asyncio.Queue[AudioFile | None],
    slots: Limiter,
) -> None:
    counters = ctx.metrics.stages["download"]
    try:
        vlog = log.bind(video_id=ref.id)
        vlog.info("download_start", url=ref.webpage_url or ref.url)
        started = counters.begin()
        try:
            audio = await downloader.download(ref, ctx.settings.audio_dir)
        except DownloadError as exc:
            counters.end(started, ok=False)
            if isinstance(exc, RateLimitedError):
                ctx.metrics.download.rate_limited += 1
            await ctx.fail(ref, "download", str(exc))
            return
        finally:
            ctx.metrics.download.finished(ref.id)
        counters.end(started)
        vlog.info("download_done", bytes=audio.size, ms=round(1000 * (time.monotonic() - started)))
        await outbox.put(audio)
    finally:
        await slots.release()
