"""decode: audio decode/resample (+ VAD and features when batching), window by window, ahead of ASR.

A long video is decoded DECODE_WINDOW_S at a time (cut at a silence, ``models/windows.py``) and
each window goes on to the model as soon as it is ready, so memory per video in flight is one
window whatever the video's length. The queue ahead of the model is counted in speech chunks
(``stages/description.py``): short files wait there together and share model batches.

The decoder is a child process by default (``stages/decoder_process.py``: PyAV holds the GIL while
it decodes), else a thread. Its busy time is the time spent decoding, not the time a window
waits for room ahead of the model, so a slow decoder shows as ``decode``.

A video whose windows are partly checkpointed starts at ``ctx.resume_at``'s point (a seek, the
windows numbered on from there), and one wholly checkpointed is not decoded. A file handed on
while it downloads (``AudioFile.growing``, ``docs/STREAMING_DECODE.md``) is read as it grows; if
its download fails for good, the windows already in the model stage are dropped and the
download stage records the failure, as it does for any download.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ytingest.errors import TranscribeError
from ytingest.items import AudioFile, DecodedAudio, PreparedAudio, ResumePoint
from ytingest.logs import get_logger
from ytingest.models.growing import DownloadEnded, end_marker, read_end, wait_whole
from ytingest.models.windows import iter_windows
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.counters import StageCounters
from ytingest.ports import PreparingTranscriber
from ytingest.stages.disk import keep_for_retry, quarantine

log = get_logger()


@runtime_checkable
class Prepare(Protocol):
    """A file's windows, in order, from ``start`` (None: its beginning); ``growing``: the ``.part``
    still being written, read as it grows. The decode stage passes each only when set."""

    def __call__(
        self, path: Path, *, start: ResumePoint | None = None, growing: Path | None = None
    ) -> AsyncIterator[PreparedAudio]: ...


def windows_in_thread(transcriber: PreparingTranscriber, executor: Executor) -> Prepare:
    """``prepare_windows`` run in ``executor``, one window per call (DECODE_PROCESS=false). A resume
    point or a growing file goes to ``iter_windows`` with the transcriber's ``prepare_options``
    (as the decoder child builds them); a transcriber without them decodes the whole file from
    its start, its windows before the point left out."""
    options = getattr(transcriber, "prepare_options", None)
    extractors: list[Any] = []  # built once, on the first resume or growing file

    def iterate(path: Path, start: ResumePoint | None, growing: Path | None) -> Iterator[PreparedAudio]:
        if start is None and growing is None:
            yield from transcriber.prepare_windows(path)
            return
        if isinstance(options, dict):
            if not extractors:
                from faster_whisper.feature_extractor import FeatureExtractor

                extractors.append(FeatureExtractor(**options["features"]))
            window_s = float(options.get("window_s", 300.0))
            yield from iter_windows(
                path,
                batching=options["batching"],
                extractor=extractors[0],
                window_s=window_s,
                start=start,
                growing=growing,
            )
            return
        if growing is not None:
            wait_whole(growing)
        for window in transcriber.prepare_windows(path):
            if start is None or window.index >= start.index:
                yield window

    async def windows(
        path: Path, *, start: ResumePoint | None = None, growing: Path | None = None
    ) -> AsyncGenerator[PreparedAudio, None]:
        loop = asyncio.get_running_loop()
        it = iterate(path, start, growing)
        while (window := await loop.run_in_executor(executor, next, it, None)) is not None:
            yield window

    return windows


async def fail_unreadable(ctx: RunContext, audio: AudioFile, exc: TranscribeError, stage: str) -> None:
    """A file that cannot be decoded: forget its windows already in the model stage, quarantine
    it and fail the video for good in ``stage`` (the one that found it unreadable; a re-run skips
    it). A video the model already failed stays failed as it was."""
    if not ctx.windows.drop(audio.video.id):
        return
    ctx.metrics.progress.end(audio.video.id)
    kept = await asyncio.to_thread(quarantine, audio.path, ctx.settings.ytingest_home / "quarantine")
    await ctx.fail(audio.video, stage, f"{exc} (file kept in {kept})", permanent=True)


async def drop_interrupted(ctx: RunContext, audio: AudioFile, exc: DownloadEnded, stage: str) -> None:
    """A file decoded as it downloaded whose download failed for good: forget its windows in the
    model stage. The download stage records the failure (and retries, as for any download);
    only a download that went silent without saying how it ended is failed here, in ``stage``
    (the decoder waited for it in vain)."""
    vid = audio.video.id
    if ctx.windows.drop(vid):
        ctx.metrics.progress.end(vid)
    log.warning("decode_abandoned", video_id=vid, reason=str(exc))
    if audio.growing is not None and read_end(audio.growing) is None:
        await ctx.fail(audio.video, stage, str(exc))


async def download_ended(audio: AudioFile) -> bool:
    """Until a growing file's download has ended: True when its file is whole at ``audio.path``."""
    if audio.growing is None:
        return True
    try:
        await asyncio.to_thread(wait_whole, audio.growing)
    except DownloadEnded:
        return False
    return True


def _forget_marker(audio: AudioFile) -> None:
    if audio.growing is not None:
        end_marker(audio.growing).unlink(missing_ok=True)


async def decode_worker(
    ctx: RunContext,
    prepare: Prepare | None,
    inbox: asyncio.Queue[AudioFile | None],
    outbox: asyncio.Queue[DecodedAudio | None],
    *,
    counters: StageCounters,
) -> None:
    """Decode files in order, handing on each window as it is ready, until the end marker; a file
    that cannot be decoded fails here. ``prepare`` None: the transcriber decodes by itself, files
    pass straight through. ``counters``: the decode stage's (its failures are named by them)."""
    while (audio := await inbox.get()) is not None:
        if ctx.stopping.is_set():  # a graceful stop: finish the videos begun, leave these pending
            if await download_ended(audio):  # else the download stage records how it failed
                kept = await asyncio.to_thread(keep_for_retry, audio.path, ctx.settings.kept_dir)
                log.info("video_left_pending", video_id=audio.video.id, reason="stopping", audio=str(kept))
                ctx.settle(audio.video.id, "released")
            _forget_marker(audio)
            continue
        point = await ctx.resume_at(audio.video.id)
        if point is not None and point.complete:  # stored from its checkpoints, not decoded again
            if await download_ended(audio) and audio.growing is not None and not ctx.settings.keep_audio:
                audio.path.unlink(missing_ok=True)  # finished downloading after its video was stored
            _forget_marker(audio)
            log.info("decode_skipped", video_id=audio.video.id, reason="every window checkpointed")
            continue
        if prepare is None and audio.growing is not None:  # the transcriber reads whole files
            whole = await download_ended(audio)
            _forget_marker(audio)
            if not whole:
                continue  # the download stage records the failure
            audio = replace(audio, growing=None)
        ctx.metrics.progress.begin(audio.video.id, audio.video.title, audio.video.duration)
        if prepare is None:  # nothing to do here: counted as done, with no busy time
            counters.end(counters.begin(), audio_seconds=audio.video.duration or 0.0)
            await outbox.put(DecodedAudio(audio))
            continue
        await _decode_file(ctx, counters, prepare, audio, point, outbox)


async def _decode_file(
    ctx: RunContext,
    counters: StageCounters,
    prepare: Prepare,
    audio: AudioFile,
    point: ResumePoint | None,
    outbox: asyncio.Queue[DecodedAudio | None],
) -> None:
    """One file's windows (from ``point``) to ``outbox``, as the decode worker's docstring says."""
    t0 = started = counters.begin()
    busy = True  # between begin() and end(): decoding, not waiting for room ahead of the model
    options: dict[str, Any] = {}
    if point is not None:
        options["start"] = point
        log.info(
            "decode_resumed", video_id=audio.video.id, window=point.index, offset_s=round(point.offset, 2)
        )
    if audio.growing is not None:
        options["growing"] = audio.growing
    windows = prepare(audio.path, **options)
    first, finished = True, False
    try:
        try:
            async for window in windows:
                counters.end(t0, audio_seconds=window.seconds, items=1 if window.last else 0)
                busy = False
                if first and window.total:  # the file's length, when the listing had none
                    ctx.metrics.progress.advance(audio.video.id, window.offset, window.total)
                if first and audio.growing is not None:
                    log.info("decoded_while_downloading", video_id=audio.video.id, window=window.index)
                first = False
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
                finished = window.last
                if ctx.windows.failed(audio.video.id):
                    break
                t0, busy = counters.begin(), True
            else:
                counters.end(t0, items=0)
            busy = False
        except DownloadEnded as exc:  # not the file's fault, nor the decoder's
            counters.end(t0, items=0)
            await drop_interrupted(ctx, audio, exc, counters.name)
            return
        except TranscribeError as exc:
            counters.end(t0, ok=False)
            await download_ended(audio)  # a growing file: quarantined once it is whole
            await fail_unreadable(ctx, audio, exc, counters.name)
            return
        except BaseException:
            if busy:
                counters.end(t0, ok=False)
            raise
        finally:
            if isinstance(windows, AsyncGenerator):  # stopped early: the decoder lets go of the file
                await windows.aclose()
        if not finished and audio.growing is not None and await download_ended(audio):
            # the model failed on an earlier window while the file was downloading: kept now, as
            # the transcribe stage keeps a whole file for the retry
            if ctx.windows.failed(audio.video.id):
                await asyncio.to_thread(keep_for_retry, audio.path, ctx.settings.kept_dir)
        log.debug("decode_done", video_id=audio.video.id, ms=round(1000 * (time.monotonic() - started)))
    finally:
        _forget_marker(audio)
