"""store: DB_WORKERS writers; each video is COPYed and committed whole, in one transaction."""

from __future__ import annotations

import asyncio
import time

import structlog

from ytingest.items import EmbeddedTranscript
from ytingest.run import Closing, RunContext

log = structlog.get_logger("ytingest")


async def store_worker(
    ctx: RunContext,
    inbox: asyncio.Queue[EmbeddedTranscript | None],
    closing: Closing,
    *,
    asr_model: str,
    embed_model: str,
) -> None:
    """Write videos until the end marker. A StoreError ends the run: the database is gone."""
    while (item := await inbox.get()) is not None:
        t = item.transcript
        counters = ctx.metrics.stages["store"]
        t0 = counters.begin()
        try:
            await ctx.ledger.store_transcript(item, asr_model=asr_model, embed_model=embed_model)
        except BaseException:
            counters.end(t0, ok=False)
            raise
        counters.end(t0, audio_seconds=t.audio_seconds)
        ctx.segments += len(t.segments)
        log.info(
            "video_stored",
            video_id=t.video.id,
            segments=len(t.segments),
            ms=round(1000 * (time.monotonic() - t0)),
        )
    await closing.worker_done(inbox)
