"""The disk budget: downloads wait while the audio folder is over MAX_AUDIO_BYTES or free space is low."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ytingest.logs import get_logger
from ytingest.stages.pause import sleep_unless

log = get_logger()


LEFTOVER_SUFFIXES = (".part", ".ytdl", ".temp")


def quarantine(path: Path, folder: Path) -> Path:
    """Move a file ASR could not read out of the audio folder, for a person to look at."""
    target = folder / path.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.replace(target)
    except OSError:
        return path
    return target


def keep_for_retry(path: Path, folder: Path) -> Path:
    """Move the audio of a video the model failed on, or that a graceful stop left undecoded, into
    ``folder`` (``kept/``), where the next attempt finds it instead of downloading it again."""
    return quarantine(path, folder)


def take_kept(video_id: str, folder: Path, audio_dir: Path) -> Path | None:
    """The kept audio of ``video_id``, moved back into ``audio_dir``; None when there is none.
    Names are compared, never globbed or joined, so an odd id cannot reach outside the folder."""
    if not folder.is_dir():
        return None
    for entry in folder.iterdir():
        if entry.is_file() and entry.name.rsplit(".", 1)[0] == video_id:
            target = audio_dir / entry.name
            try:
                entry.replace(target)
            except OSError:
                return None
            return target
    return None


def folder_bytes(folder: Path) -> int:
    """Bytes of the files directly in ``folder``; files vanishing meanwhile are skipped."""
    total = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_file():
                        total += entry.stat().st_size
                except OSError:
                    continue
    except OSError:
        return 0
    return total


def clean_leftovers(audio_dir: Path, *, keep_audio: bool) -> int:
    """At start nothing is in flight: remove partial downloads (and, unless KEEP_AUDIO, orphaned
    audio a killed run left behind). Returns how many files went."""
    removed = 0
    if not audio_dir.is_dir():
        return 0
    for entry in audio_dir.iterdir():
        partial = any(s in entry.name for s in LEFTOVER_SUFFIXES)
        if entry.is_file() and (partial or not keep_audio):
            entry.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("cleaned_leftovers", files=removed)
    return removed


@dataclass
class DiskBudget:
    """Counts every file in the audio folder, ``.part`` files of downloads in flight included."""

    audio_dir: Path
    max_bytes: int
    min_free_bytes: int
    poll_s: float = 0.5
    blocked: bool = False

    def used(self) -> int:
        return folder_bytes(self.audio_dir)

    def why_not(self) -> str | None:
        """Why a download may not start now (blocking file-system calls: run in a thread)."""
        used = self.used()
        if used >= self.max_bytes:
            return f"audio folder holds {used} bytes, MAX_AUDIO_BYTES is {self.max_bytes}"
        free = shutil.disk_usage(self.audio_dir).free
        if free < self.min_free_bytes:
            return f"{free} bytes free, MIN_FREE_BYTES is {self.min_free_bytes}"
        return None

    async def wait_for_room(self, stop: asyncio.Event) -> None:
        """Until there is room, or the run is stopping."""
        while not stop.is_set() and (reason := await asyncio.to_thread(self.why_not)) is not None:
            if not self.blocked:
                log.warning("disk_budget_wait", reason=reason)
            self.blocked = True
            await sleep_unless(stop, self.poll_s)
        if self.blocked:
            log.info("disk_budget_ok")
        self.blocked = False
