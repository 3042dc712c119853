"""embed: a micro-batcher gathers segments across videos (BATCH_SIZE rows or max age) and encodes them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ytingest.errors import EmbedError
from ytingest.items import EmbeddedTranscript, Transcript
from ytingest.logs import get_logger
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.tuning import Tuning

log = get_logger()
_AGED = object()  # the oldest waiting row reached BATCH_MAX_AGE_S


class Embedder(Protocol):
    """Synchronous: runs in an executor thread. ``batch_size`` rows per forward pass (None: its own)."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]: ...


async def run_batcher(
    ctx: RunContext,
    embedder: Embedder,
    executor: Executor,
    inbox: asyncio.Queue[Transcript | None],
    outbox: asyncio.Queue[EmbeddedTranscript | None],
) -> None:
    """Flush when BATCH_SIZE rows are waiting (read live: autotune may change it), the oldest
    waited BATCH_MAX_AGE_S, or the input ends."""
    max_age = ctx.settings.batch_max_age_s
    pending: list[Transcript] = []
    rows = 0
    oldest = 0.0
    while True:
        wait = max(0.0, oldest + max_age - time.monotonic()) if pending else None
        item: Transcript | None | object
        try:
            async with asyncio.timeout(wait):
                item = await inbox.get()
        except TimeoutError:
            item = _AGED
        if isinstance(item, Transcript):
            if not pending:
                oldest = time.monotonic()
            pending.append(item)
            rows += len(item.segments)
            if rows < ctx.tuning.batch_size:
                continue
        if pending:
            await _flush(ctx, embedder, executor, pending, outbox)
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
    embedder: Embedder,
    executor: Executor,
    batch: list[Transcript],
    outbox: asyncio.Queue[EmbeddedTranscript | None],
) -> None:
    """Encode every segment of ``batch`` in one call; hand on one item per video."""
    texts = [s.text for t in batch for s in t.segments]
    counters = ctx.metrics.stages["embed"]
    try:
        async with ctx.turns.embed():
            t0 = counters.begin()
            vectors = await _encode_halving_on_oom(ctx.tuning, embedder, executor, texts)
    except EmbedError as exc:
        counters.end(t0, ok=False, errors=len(batch) - 1)  # one error per video
        for t in batch:
            await ctx.fail(t.video, "embed", str(exc))
        return
    counters.end(t0, audio_seconds=sum(t.audio_seconds for t in batch), items=len(batch))
    log.info("embed_batch", rows=len(texts), videos=len(batch), ms=round(1000 * (time.monotonic() - t0)))
    offset = 0
    for t in batch:
        n = len(t.segments)
        await outbox.put(EmbeddedTranscript(t, vectors[offset : offset + n]))
        offset += n
