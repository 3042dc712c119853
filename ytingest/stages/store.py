"""store: DB_WORKERS writers. Each takes every video already waiting (up to STORE_GROUP_MAX) and
COPYs and commits them whole, in one transaction: the sink keeps up by writing bigger groups.
A video becomes searchable only then, whole, even when its windows were checkpointed one by one
(``docs/RESUME.md``); its checkpoints are forgotten once it is committed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from ytingest.errors import StoreError
from ytingest.items import EmbeddedTranscript
from ytingest.logs import get_logger
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.counters import StageCounters
from ytingest.pipeline.queues import take_waiting
from ytingest.speakers.clustering import name_voices

log = get_logger()
STORE_GROUP_MAX = 64  # videos per transaction


async def store_worker(
    ctx: RunContext,
    inbox: asyncio.Queue[EmbeddedTranscript | None],
    *,
    counters: StageCounters,
    asr_model: str,
    embed_model: str,
    speaker_model: str = "",
    same_voice: float = 0.8,
) -> None:
    """Write videos until the end marker. A StoreError ends the run: the database is gone (or
    refuses the writes).
    Anonymous voices get their channel's labels as they are stored (``speaker_model``'s voices,
    cosine ≥ ``same_voice`` = the same voice). ``counters``: the store stage's."""
    ended = False
    while not ended and (first := await inbox.get()) is not None:
        group, ended = take_waiting(inbox, first, STORE_GROUP_MAX)
        await store_group(
            ctx,
            group,
            counters,
            asr_model=asr_model,
            embed_model=embed_model,
            speaker_model=speaker_model,
            same_voice=same_voice,
        )


async def store_group(
    ctx: RunContext,
    group: Sequence[EmbeddedTranscript],
    counters: StageCounters | None = None,
    /,
    *,
    asr_model: str,
    embed_model: str,
    speaker_model: str = "",
    same_voice: float = 0.8,
) -> None:
    """Commit ``group`` in one transaction, count it on ``counters`` (None: the last stage's, as
    a video stored from its checkpoints went through the whole pipeline), then forget its videos'
    checkpoints (a failure there only leaves rows that are never used: they predate the video's
    ``done_at``)."""
    counters = counters or ctx.metrics.through
    t0 = counters.begin()
    try:
        await ctx.ledger.store_transcripts(
            group,
            asr_model=asr_model,
            embed_model=embed_model,
            speaker_model=speaker_model,
            same_voice=same_voice,
            namer=name_voices,
        )
    except BaseException:
        counters.end(t0, ok=False)
        raise
    counters.end(t0, audio_seconds=sum(it.transcript.audio_seconds for it in group), items=len(group))
    ms = round(1000 * (time.monotonic() - t0))
    for it in group:
        ctx.segments += len(it.transcript.segments)
        ctx.settle(it.transcript.video.id, "stored")
        log.info(
            "video_stored",
            video_id=it.transcript.video.id,
            segments=len(it.transcript.segments),
            ms=ms,
            group=len(group),
        )
    if ctx.checkpoints is not None:
        try:
            await ctx.checkpoints.forget([it.transcript.video.id for it in group])
        except StoreError as exc:
            log.warning("checkpoints_not_deleted", videos=len(group), reason=str(exc))
