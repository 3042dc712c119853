"""Resuming inside a video: a run keeps each finished window in the database (the embed stage
calls ``keep``) and the decode stage asks ``resume_at`` where a video starts again.

``resume_at`` reads the video's checkpoints for this run's models (``db/checkpoints.py``), puts
them back into the window assembly as if the model had just done them, and answers the first
window not kept and where it starts (the windows are contiguous: the sum of the kept ones'
lengths). When every window is kept, the video is put together and stored here, its downloaded
file removed as a finished video's is, and the decode stage decodes nothing of it
(``complete``). Any database error means "from the start": a checkpoint saves time, never
decides whether a video is stored. ``docs/RESUME.md`` has the whole design.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from ytingest.errors import StoreError
from ytingest.items import Checkpoint, ResumePoint
from ytingest.logs import get_logger
from ytingest.pipeline.context import RunContext
from ytingest.ports import CheckpointStorage
from ytingest.stages.decode import Prepare
from ytingest.stages.disk import LEFTOVER_SUFFIXES
from ytingest.stages.store import store_group

log = get_logger()


class Resumer:
    """A run's checkpoints: ``ctx.checkpoints`` (keep, forget) and ``ctx.resume_at``."""

    def __init__(
        self,
        ctx: RunContext,
        db: CheckpointStorage,
        *,
        asr_model: str,
        embed_model: str,
        speaker_model: str = "",
    ) -> None:
        self.ctx, self.db = ctx, db
        self.models = {"asr_model": asr_model, "embed_model": embed_model, "speaker_model": speaker_model}
        self._touched: set[str] = set()  # videos with checkpoints written or read by this run

    async def keep(self, windows: Sequence[tuple[str, Checkpoint]]) -> None:
        """Write the windows (one statement); StoreError when the database refuses."""
        self._touched.update(vid for vid, _ in windows)
        await self.db.save_checkpoints(windows, **self.models)

    async def forget(self, video_ids: Sequence[str]) -> None:
        """The videos are stored: delete the checkpoints this run wrote or used for them (any
        others are older than the video's ``done_at``, so never used)."""
        ids = [v for v in video_ids if v in self._touched]
        self._touched.difference_update(ids)
        await self.db.delete_checkpoints(ids)

    async def resume_at(self, video_id: str) -> ResumePoint | None:
        """Where ``video_id``'s decoding starts again; None: from its start (nothing kept)."""
        ctx = self.ctx
        try:
            ref, kept = await self.db.load_checkpoints(video_id, **self.models)
        except StoreError as exc:
            log.warning("checkpoints_unread", video_id=video_id, reason=str(exc))
            return None
        if ref is None or not kept or ctx.windows.failed(video_id):
            return None
        self._touched.add(video_id)
        point = ResumePoint(len(kept), sum(c.result.seconds for c in kept), kept[-1].result.last)
        log.info(
            "video_resumed",
            video_id=video_id,
            windows_kept=point.index,
            offset_s=round(point.offset, 2),
            complete=point.complete,
        )
        whole = ctx.windows.restore(video_id, kept, ref)
        if whole is None:
            return point
        ctx.metrics.progress.end(video_id)
        if not ctx.settings.keep_audio:
            await asyncio.to_thread(_remove_audio, ctx.settings.audio_dir, video_id)
        await store_group(ctx, [whole], same_voice=ctx.settings.speaker_same_voice, **self.models)
        return point


def _remove_audio(folder: Path, video_id: str) -> None:
    """Delete the downloaded audio of ``video_id`` (``<id>.<ext>``; names compared, never globbed,
    so an odd id cannot reach outside the folder). A download still being written is left."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        partial = any(s in entry.name for s in LEFTOVER_SUFFIXES)
        if not partial and entry.is_file() and entry.name.rsplit(".", 1)[0] == video_id:
            entry.unlink(missing_ok=True)


def use_checkpoints(
    ctx: RunContext, db: object, prepare: Prepare | None, asr_model: str, embed_model: str, speaker_model: str
) -> None:
    """Keep finished windows and resume videos after them, when videos are decoded window by window
    (``prepare``) and ``db`` can keep them (``CheckpointStorage``: PostgreSQL's, not the fakes')."""
    if prepare is not None and isinstance(db, CheckpointStorage):
        r = Resumer(ctx, db, asr_model=asr_model, embed_model=embed_model, speaker_model=speaker_model)
        ctx.checkpoints, ctx.resume_at = r, r.resume_at
