"""decode: audio decode/resample (+ VAD and features when batching), ahead of ASR.

One decoder keeps ASR_QUEUE_SIZE prepared files ready, so the model never waits for PyAV or
the VAD: decoding the next files overlaps inference on the current ones. The decoder is a child
process by default (``stages/decoder_process.py``: PyAV holds the GIL while it decodes), else a
thread. Its busy time is the time a file spends being prepared, so a slow decoder shows as ``decode``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from ytingest.errors import TranscribeError
from ytingest.items import AudioFile, DecodedAudio, PreparedAudio
from ytingest.logs import get_logger
from ytingest.models.asr import AsrResult
from ytingest.pipeline.context import RunContext
from ytingest.stages.disk import quarantine

log = get_logger()


@runtime_checkable
class PreparingTranscriber(Protocol):
    """A transcriber whose decode step can run apart from (and ahead of) inference."""

    name: str

    def prepare(self, path: Path) -> PreparedAudio: ...
    def transcribe_prepared(self, items: list[PreparedAudio]) -> list[AsrResult]: ...


Prepare = Callable[[Path], Awaitable[PreparedAudio]]


async def fail_unreadable(ctx: RunContext, audio: AudioFile, exc: TranscribeError) -> None:
    """A file ASR cannot read: quarantine it and fail the video for good (a re-run skips it)."""
    kept = await asyncio.to_thread(quarantine, audio.path, ctx.settings.ytingest_home / "quarantine")
    await ctx.fail(audio.video, "transcribe", f"{exc} (file kept in {kept})", permanent=True)


async def decode_worker(
    ctx: RunContext,
    prepare: Prepare | None,
    inbox: asyncio.Queue[AudioFile | None],
    outbox: asyncio.Queue[DecodedAudio | None],
) -> None:
    """Prepare files in order until the end marker; a file that cannot be decoded fails here.
    ``prepare`` None: the transcriber decodes by itself, files pass straight through."""
    counters = ctx.metrics.stages["decode"]
    while (audio := await inbox.get()) is not None:
        if prepare is None:  # nothing to do here: counted as done, with no busy time
            counters.end(counters.begin(), audio_seconds=audio.video.duration or 0.0)
            await outbox.put(DecodedAudio(audio))
            continue
        t0 = counters.begin()
        try:
            prepared = await prepare(audio.path)
        except TranscribeError as exc:
            counters.end(t0, ok=False)
            await fail_unreadable(ctx, audio, exc)
            continue
        except BaseException:
            counters.end(t0, ok=False)
            raise
        counters.end(t0, audio_seconds=prepared.seconds)
        log.debug(
            "decoded",
            video_id=audio.video.id,
            chunks=len(prepared.chunks),
            ms=round(1000 * (time.monotonic() - t0)),
        )
        await outbox.put(DecodedAudio(audio, prepared))
