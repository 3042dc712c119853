"""embed: a micro-batcher gathers segments across windows and videos (BATCH_SIZE rows or max age)
and encodes them; then each video is put back together from its windows (``pipeline/assembly.py``)
and handed on whole to the store.

Windows are embedded as they come, not whole videos: the rows of a 1.5-hour video are encoded
while its later windows are still in the model, so nothing is left to encode in a burst once its
last window is through (the end of a run waited for a whole video's rows).

Each embedded window of a video of more than one window is then checkpointed (``ctx.checkpoints``,
one statement per batch, before any of its videos goes on to the store): everything the store
needs of it now exists, so a re-run resumes after it (``stages/resume.py``). A one-window video
is not: it goes straight on to the store, and checkpointing it would double its writes.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor

import numpy as np
import numpy.typing as npt

from ytingest.errors import EmbedError, StoreError
from ytingest.items import Checkpoint, EmbeddedTranscript, LabelledWindow
from ytingest.logs import get_logger
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.counters import StageCounters
from ytingest.pipeline.tuning import Tuning
from ytingest.ports import Embedder

log = get_logger()
_AGED = object()  # the oldest waiting row reached BATCH_MAX_AGE_S


async def run_batcher(
    ctx: RunContext,
    embedder: Embedder,
    executor: Executor,
    inbox: asyncio.Queue[LabelledWindow | None],
    outbox: asyncio.Queue[EmbeddedTranscript | None],
    *,
    counters: StageCounters,
) -> None:
    """Flush when BATCH_SIZE rows are waiting (read live: autotune may change it), the oldest
    waited BATCH_MAX_AGE_S, a video's last window came with nothing behind it (its video need
    not wait for company), or the input ends. ``counters``: the embed stage's."""
    max_age = ctx.settings.batch_max_age_s
    pending: list[LabelledWindow] = []
    rows = 0
    oldest = 0.0
    while True:
        wait = max(0.0, oldest + max_age - time.monotonic()) if pending else None
        item: LabelledWindow | None | object
        try:
            async with asyncio.timeout(wait):
                item = await inbox.get()
        except TimeoutError:
            item = _AGED
        if isinstance(item, LabelledWindow):
            if ctx.windows.failed(item.file.video.id):
                continue
            if not pending:
                oldest = time.monotonic()
            pending.append(item)
            rows += len(item.result.segments)
            if rows < ctx.tuning.batch_size and not (item.result.last and inbox.empty()):
                continue
        if pending:
            await _flush(ctx, counters, embedder, executor, pending, outbox)
            pending, rows = [], 0
        if item is None:
            break


async def _encode_halving_on_oom(
    tuning: Tuning, embedder: Embedder, executor: Executor, texts: list[str]
) -> npt.NDArray[np.float32]:
    """Encode ENCODE_BATCH_SIZE rows per forward pass; on a CUDA out-of-memory error halve it and
    retry the same rows (nothing is lost)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await loop.run_in_executor(executor, embedder.encode, texts, tuning.encode_batch_size)
        except EmbedError as exc:
            if not exc.out_of_memory or tuning.encode_batch_size <= 1:
                raise
            before = tuning.encode_batch_size
            tuning.encode_batch_size = max(1, before // 2)
            log.warning(
                "tune",
                knob="ENCODE_BATCH_SIZE",
                before=before,
                after=tuning.encode_batch_size,
                reason="CUDA out of memory while embedding; retrying the batch",
            )


async def _flush(
    ctx: RunContext,
    counters: StageCounters,
    embedder: Embedder,
    executor: Executor,
    batch: list[LabelledWindow],
    outbox: asyncio.Queue[EmbeddedTranscript | None],
) -> None:
    """Encode every segment of ``batch`` in one call; hand on each video its windows complete."""
    texts = [s.text for w in batch for s in w.result.segments]
    try:
        async with ctx.turns.alone():
            t0 = counters.begin()
            vectors = await _encode_halving_on_oom(ctx.tuning, embedder, executor, texts)
    except EmbedError as exc:
        failed = list({w.file.video.id: w.file for w in batch}.values())
        counters.end(t0, ok=False, errors=len(failed) - 1)  # one error per video
        for file in failed:
            if ctx.windows.drop(file.video.id):
                ctx.metrics.progress.end(file.video.id)
                if not ctx.settings.keep_audio:
                    file.path.unlink(missing_ok=True)
                await ctx.fail(file.video, counters.name, str(exc))
        return
    done: list[EmbeddedTranscript] = []
    kept: list[tuple[str, Checkpoint]] = []
    offset = 0
    for w in batch:
        n = len(w.result.segments)
        rows = vectors[offset : offset + n]
        offset += n
        if ctx.windows.failed(w.file.video.id):
            continue
        if not (w.result.index == 0 and w.result.last):
            kept.append((w.file.video.id, Checkpoint(w.result, rows)))
        whole = ctx.windows.add_embedded(w.file, w.result, rows)
        if whole is not None:
            done.append(whole)
    counters.end(t0, audio_seconds=sum(w.result.seconds for w in batch), items=len(done))
    log.info("embed_batch", rows=len(texts), windows=len(batch), ms=round(1000 * (time.monotonic() - t0)))
    await _checkpoint(ctx, kept)
    for whole in done:
        await _hand_on(ctx, whole, outbox)


async def _checkpoint(ctx: RunContext, kept: list[tuple[str, Checkpoint]]) -> None:
    """Keep the batch's windows; a database that refuses costs only the resume, never the run
    (the store, which needs the database, says so if it is gone)."""
    if ctx.checkpoints is None or not kept:
        return
    t0 = time.monotonic()
    try:
        await ctx.checkpoints.keep(kept)
    except StoreError as exc:
        log.warning("checkpoint_failed", windows=len(kept), reason=str(exc))
        return
    ms = round(1000 * (time.monotonic() - t0))
    for vid, c in kept:  # each logged once it is committed
        r = c.result
        log.info("window_checkpointed", video_id=vid, window=r.index, seconds=round(r.seconds, 3), ms=ms)


async def _hand_on(
    ctx: RunContext,
    item: EmbeddedTranscript,
    outbox: asyncio.Queue[EmbeddedTranscript | None],
) -> None:
    """A whole video: out of the model's progress view, on to the store."""
    transcript = item.transcript
    video = transcript.video
    ctx.metrics.progress.end(video.id)
    if transcript.warning:
        log.warning("stored_with_warning", video_id=video.id, warning=transcript.warning)
    log.info(
        "transcribe_done",
        video_id=video.id,
        segments=len(transcript.segments),
        audio_seconds=round(transcript.audio_seconds, 2),
        language=transcript.language,
    )
    await outbox.put(item)
