"""``enqueue_channel``: list a channel, register its videos and queue one job per video.

The listing is ``stream``'s (``run_discovery``: tabs, --limit, --since/--until, --skip-shorts,
--new-only, stored videos skipped); a video already queued or held by a worker is skipped too
(and pgqueuer's dedupe key makes two enqueues racing each other add it once).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ytingest.db.database import Database
from ytingest.db.jobs import enqueue_refs, install_queue
from ytingest.engine import Engine
from ytingest.items import VideoRef
from ytingest.logs import get_logger
from ytingest.pipeline.context import RunContext
from ytingest.sourcetext import public_url
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.discover import Listing, run_discovery

log = get_logger()
BATCH = 100  # jobs per INSERT


@dataclass(frozen=True, slots=True)
class Enqueued:
    queued: int  # new jobs
    skipped: int  # stored already, failed permanently, queued already, or filtered out

    def to_dict(self) -> dict[str, int]:
        return {"queued": self.queued, "skipped": self.skipped}


class _QueueAwareLedger:
    """The database as a ``RunStore``, for which a video already in the queue is one to skip."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.register_channel, self.register_video = db.register_channel, db.register_video
        self.count_attempt, self.record_metadata = db.count_attempt, db.record_metadata
        self.mark_failed, self.store_transcripts = db.mark_failed, db.store_transcripts

    async def skip_reason(self, video_id: str) -> str | None:
        if reason := await self._db.skip_reason(video_id):
            return reason
        return "already queued" if await self._db.is_queued(video_id) else None


async def enqueue_channel(engine: Engine, url: str, listing: Listing) -> Enqueued:
    """List ``url`` as ``stream`` would and queue what it selects."""
    db, s = engine.database, engine.settings
    conn = await db.connect_one("open the job queue")
    try:
        await install_queue(conn)
        await db.register_channel(url)
        ctx = RunContext(s, _QueueAwareLedger(db), metrics_for(PIPELINE, s))
        listed: asyncio.Queue[VideoRef | None] = asyncio.Queue(BATCH)
        queued = 0
        async with asyncio.TaskGroup() as tg:
            tg.create_task(run_discovery(ctx, engine.discoverer(), url, listed, listing))
            batch: list[VideoRef] = []
            while (ref := await listed.get()) is not None:
                batch.append(ref)
                if len(batch) >= BATCH or listed.empty():
                    queued += await enqueue_refs(conn, batch)
                    batch = []
            queued += await enqueue_refs(conn, batch)
    finally:
        await db.close_one(conn)
    result = Enqueued(queued, ctx.metrics.skipped + ctx.metrics.queued - queued)
    log.info("enqueued", channel=public_url(url), **result.to_dict())
    return result
