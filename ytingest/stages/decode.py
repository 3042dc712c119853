"""decode: audio decode/resample (+ VAD and features when batching), window by window, ahead of ASR.

A long video is decoded DECODE_WINDOW_S at a time (cut at a silence, ``models/windows.py``) and
each window goes on to the model as soon as it is ready, so memory per video in flight is one
window whatever the video's length. The queue ahead of the model is counted in speech chunks
(``stages/description.py``): short files wait there together and share model batches.

The decoder is a child process by default (``stages/decoder_process.py``: PyAV holds the GIL while
it decodes), else a thread. Its busy time is the time spent decoding, not the time a window
waits for room ahead of the model, so a slow decoder shows as ``decode``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import Protocol, runtime_checkable

from ytingest.errors import TranscribeError
from ytingest.items import AudioFile, DecodedAudio, PreparedAudio
from ytingest.logs import get_logger
from ytingest.models.asr import AsrResult
from ytingest.pipeline.context import RunContext
from ytingest.stages.disk import keep_for_retry, quarantine

log = get_logger()


@runtime_checkable
class PreparingTranscriber(Protocol):
    """A transcriber whose decode step can run apart from (and ahead of) inference."""

    name: str

    def prepare_windows(self, path: Path) -> Iterator[PreparedAudio]: ...
    def detect_language(self, item: PreparedAudio) -> tuple[str, float | None]: ...
    def transcribe_prepared(
        self,
        items: list[PreparedAudio],
        *,
        batch_size: int | None = None,
        languages: list[str | None] | None = None,
    ) -> list[AsrResult]: ...


Prepare = Callable[[Path], AsyncIterator[PreparedAudio]]


def windows_in_thread(transcriber: PreparingTranscriber, executor: Executor) -> Prepare:
    """``prepare_windows`` run in ``executor``, one window per call (DECODE_PROCESS=false)."""

    async def windows(path: Path) -> AsyncGenerator[PreparedAudio, None]:
        loop = asyncio.get_running_loop()
        it = transcriber.prepare_windows(path)
        while (window := await loop.run_in_executor(executor, next, it, None)) is not None:
            yield window

    return windows


async def fail_unreadable(ctx: RunContext, audio: AudioFile, exc: TranscribeError) -> None:
    """A file that cannot be decoded: forget its windows already in the model stage, quarantine
    it and fail the video for good (a re-run skips it). A video the model already failed stays
    failed as it was."""
    if not ctx.windows.drop(audio.video.id):
        return
    ctx.metrics.progress.end(audio.video.id)
    kept = await asyncio.to_thread(quarantine, audio.path, ctx.settings.ytingest_home / "quarantine")
    await ctx.fail(audio.video, "transcribe", f"{exc} (file kept in {kept})", permanent=True)


async def decode_worker(
    ctx: RunContext,
    prepare: Prepare | None,
    inbox: asyncio.Queue[AudioFile | None],
    outbox: asyncio.Queue[DecodedAudio | None],
) -> None:
    """Decode files in order, handing on each window as it is ready, until the end marker; a file
    that cannot be decoded fails here. ``prepare`` None: the transcriber decodes by itself, files
    pass straight through."""
    counters = ctx.metrics.stages["decode"]
    while (audio := await inbox.get()) is not None:
        if ctx.stopping.is_set():  # a graceful stop: finish the videos begun, leave these pending
            kept = await asyncio.to_thread(keep_for_retry, audio.path, ctx.settings.kept_dir)
            log.info("video_left_pending", video_id=audio.video.id, reason="stopping", audio=str(kept))
            ctx.settle(audio.video.id, "released")
            continue
        ctx.metrics.progress.begin(audio.video.id, audio.video.title, audio.video.duration)
        if prepare is None:  # nothing to do here: counted as done, with no busy time
            counters.end(counters.begin(), audio_seconds=audio.video.duration or 0.0)
            await outbox.put(DecodedAudio(audio))
            continue
        t0 = started = counters.begin()
        busy = True  # between begin() and end(): decoding, not waiting for room ahead of the model
        windows = prepare(audio.path)
        try:
            async for window in windows:
                counters.end(t0, audio_seconds=window.seconds, items=1 if window.last else 0)
                busy = False
                if window.index == 0 and window.total:  # the file's length, when the listing had none
                    ctx.metrics.progress.advance(audio.video.id, 0.0, window.total)
                log.debug(
                    "decoded",
                    video_id=audio.video.id,
                    window=window.index,
                    offset_s=round(window.offset, 2),
                    chunks=len(window.chunks),
                    ms=round(1000 * (time.monotonic() - t0)),
                )
                if ctx.windows.failed(audio.video.id):  # the model failed on an earlier window
                    break
                await outbox.put(DecodedAudio(audio, window))  # waits for room ahead of the model
                if ctx.windows.failed(audio.video.id):
                    break
                t0, busy = counters.begin(), True
            else:
                counters.end(t0, items=0)
            busy = False
        except TranscribeError as exc:
            counters.end(t0, ok=False)
            await fail_unreadable(ctx, audio, exc)
            continue
        except BaseException:
            if busy:
                counters.end(t0, ok=False)
            raise
        finally:
            if isinstance(windows, AsyncGenerator):  # stopped early: the decoder lets go of the file
                await windows.aclose()
        log.debug("decode_done", video_id=audio.video.id, ms=round(1000 * (time.monotonic() - started)))
