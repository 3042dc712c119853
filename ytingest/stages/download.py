"""download: one ``yt-dlp -f bestaudio/best`` subprocess per video, at most IO_WORKERS at once."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from ytingest.errors import DownloadError
from ytingest.items import AudioFile, VideoRef
from ytingest.run import RunContext
from ytingest.stages.discover import last_error_line, read_all

log = structlog.get_logger("ytingest")


class Downloader(Protocol):
    async def download(self, ref: VideoRef, dest: Path) -> AudioFile: ...


@dataclass
class YtDlpDownloader:
    """Downloads one video's best audio into ``dest/<id>.<ext>`` (``dest`` exists) with yt-dlp."""

    ytdlp: tuple[str, ...] = ("yt-dlp",)
    timeout_s: float = 1800.0

    async def download(self, ref: VideoRef, dest: Path) -> AudioFile:
        args = [
            *self.ytdlp, "-f", "bestaudio/best", "--no-playlist", "--no-progress", "--no-mtime",
            "--no-overwrites", "--restrict-filenames", "-o", str(dest / f"{ref.id}.%(ext)s"),
            "--print", "after_move:filepath", "--", ref.url,
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
                    stdout, _ = await proc.communicate()
            except TimeoutError:
                raise DownloadError(f"download took longer than {self.timeout_s:.0f}s") from None
            finally:
                if proc.returncode is None:  # timeout or cancellation: reap the child
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await asyncio.shield(proc.wait())
            if proc.returncode != 0:
                raise DownloadError(last_error_line(read_all(errfile)))
        return _checked_file(stdout.decode(errors="replace"), dest, ref)


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
) -> None:
    """Start one download task per video, never more than IO_WORKERS at once.

    A finished file waits for room in ``outbox`` while still holding its slot:
    that is the backpressure that bounds the files on disk.
    """
    workers = ctx.settings.io_workers
    slots = asyncio.Semaphore(workers)
    while (ref := await inbox.get()) is not None:
        await slots.acquire()
        if ctx.stopping.is_set():
            slots.release()
            continue  # left pending in the ledger; the next run picks it up
        tg.create_task(_download_one(ctx, downloader, ref, outbox, slots), name=f"download:{ref.id}")
    for _ in range(workers):  # wait for every download in flight
        await slots.acquire()
    await outbox.put(None)


async def _download_one(
    ctx: RunContext,
    downloader: Downloader,
    ref: VideoRef,
    outbox: asyncio.Queue[AudioFile | None],
    slots: asyncio.Semaphore,
) -> None:
    try:
        vlog = log.bind(video_id=ref.id)
        vlog.info("download_start", url=ref.webpage_url or ref.url)
        t0 = time.monotonic()
        try:
            audio = await downloader.download(ref, ctx.settings.audio_dir)
        except DownloadError as exc:
            await ctx.fail(ref, "download", str(exc))
            return
        vlog.info("download_done", bytes=audio.size, ms=round(1000 * (time.monotonic() - t0)))
        await outbox.put(audio)
    finally:
        slots.release()
