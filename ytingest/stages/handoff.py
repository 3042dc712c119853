"""``EarlyHandoff``: a download handed to the decode stage before it ends (DECODE_WHILE_DOWNLOADING).

While yt-dlp runs, the download stage looks every ``POLL_S`` for the ``<id>.<ext>.part`` it
writes (our ``-o`` template, ``--restrict-filenames``). Once its first bytes show a container
that reads front to back (``models/growing.streamable``: WebM, or MP4 with ``moov`` first, as
YouTube's fragmented m4a) and the decode queue is empty (the decoder would otherwise wait for
nothing: files that are already whole go first), an ``AudioFile`` whose ``growing`` is that
``.part`` goes on to the decode stage, with ``path`` where yt-dlp will rename it. Any other
container, or a busy decoder, and the file goes on whole, as before.

The download goes on as always: retries resume the same ``.part`` (yt-dlp's ``--continue``), and
the end marker (``models/growing.mark_end``) is written once, when it has finished for good:
complete (the reader's end is then real), or failed, cancelled or stopped (the decode stage drops
the video's windows; the download stage records the failure as it would anyway). A retry that
wrote a different file (another format) fails the video for this run: its windows came from the
first one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

from ytingest.items import AudioFile, VideoRef
from ytingest.logs import get_logger
from ytingest.models.growing import HEAD_BYTES, mark_end, streamable
from ytingest.pipeline.context import RunContext

log = get_logger()

POLL_S = 0.2


def find_part(dest: Path, video_id: str) -> Path | None:
    """yt-dlp's ``<id>.<ext>.part`` in ``dest``, if it has begun (names compared, never globbed)."""
    head = video_id + "."
    try:
        entries = list(dest.iterdir())
    except OSError:
        return None
    for entry in entries:
        name = entry.name
        if name.startswith(head) and name.endswith(".part") and name[len(head) : -5].isalnum():
            return entry
    return None


def readable_while_growing(part: Path) -> bool | None:
    """``streamable`` on the first bytes of ``part`` (None: not enough yet, or gone)."""
    try:
        with part.open("rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return None
    return streamable(head) if head else None


@dataclass
class EarlyHandoff:
    """One video's early hand-off, across its download attempts."""

    ctx: RunContext
    ref: VideoRef
    outbox: asyncio.Queue[AudioFile | None]
    stage: str  # the download stage's name: its failures are recorded under it
    handed: AudioFile | None = None
    ended: bool = False
    _refused: set[Path] | None = None  # .part files seen not to read while growing

    async def during(self, download: Awaitable[AudioFile]) -> AudioFile:
        """``download`` (one attempt), watching for its ``.part`` meanwhile."""
        if self.handed is not None:
            return await download
        failed: Exception | None = None  # raised outside the group, which would wrap it
        async with asyncio.TaskGroup() as watching:
            watcher = watching.create_task(self._watch(), name=f"handoff:{self.ref.id}")
            try:
                audio = await download
            except Exception as exc:
                failed = exc
            finally:
                watcher.cancel()
        if failed is not None:
            raise failed
        return audio

    async def _watch(self) -> None:
        dest = self.ctx.settings.audio_dir
        refused = self._refused = self._refused or set()
        while self.handed is None:
            await asyncio.sleep(POLL_S)
            part = await asyncio.to_thread(find_part, dest, self.ref.id)
            if part is None or part in refused or not self.outbox.empty() or self.ctx.stopping.is_set():
                continue
            verdict = await asyncio.to_thread(readable_while_growing, part)
            if verdict is False:
                refused.add(part)
                log.info("decode_after_download", video_id=self.ref.id, reason="container not streamable")
            elif verdict and self.outbox.empty():
                final = part.with_name(part.name[: -len(".part")])
                self.handed = AudioFile(self.ref, final, 0, growing=part)
                self.outbox.put_nowait(self.handed)
                log.info("download_handed_to_decode", video_id=self.ref.id, file=part.name)

    async def finish(self, audio: AudioFile | None, failed: str = "the download failed") -> AudioFile | None:
        """After the last attempt: the file to hand on now (None: handed already, or none).
        Writes the end marker of a handed file."""
        handed = self.handed
        if handed is None or handed.growing is None:
            return audio
        if audio is None:
            await self._end(handed.growing, failed)
            return None
        if audio.path.resolve() != handed.path.resolve():  # a retry took another format
            reason = "a retry downloaded another file than the one being decoded"
            await self._end(handed.growing, reason)
            await asyncio.to_thread(audio.path.unlink, missing_ok=True)
            await self.ctx.fail(self.ref, self.stage, reason)
            return None
        await self._end(handed.growing, None)
        return None

    async def _end(self, part: Path, error: str | None) -> None:
        self.ended = True
        try:
            await asyncio.to_thread(mark_end, part, error)
        except OSError as exc:  # the reader then stops on its stall timeout
            log.warning("handoff_marker_failed", video_id=self.ref.id, error=str(exc))

    def close(self) -> None:
        """A download cancelled after the hand-off: tell the reader (sync: runs on cancellation)."""
        if self.handed is not None and self.handed.growing is not None and not self.ended:
            self.ended = True
            with contextlib.suppress(OSError):
                mark_end(self.handed.growing, "the download was cancelled")
