"""transcribe: ASR in an executor, ASR_WORKERS at once; the model's thread does nothing else.

Windows of videos arrive decoded (stages/decode.py). With ``ASR_BATCHING=cross`` a worker takes
the windows already waiting until they hold ASR_BATCH_SIZE speech chunks (never waiting for
more), so short files share model batches and a long video fills them alone. Each window goes on
to the speakers stage as soon as it is transcribed (``TranscribedWindow``: its segments, words and
audio), which puts the video back together; a video's progress is counted as its windows finish.

When the model fails:
- out of memory: ASR_BATCH_SIZE is halved (a ``tune`` event) and the same windows go again;
  after CLIMB_AFTER calls that fit it doubles again, up to the configured size;
- any other model error fails only the videos whose windows fail on their own: transient (a later
  run or ``retry`` takes them), their audio kept in ``kept/`` for that retry, never quarantined;
  after BROKEN_AFTER such videos in a row the run stops taking new ones (a broken GPU);
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from concurrent.futures import Executor
from dataclasses import replace

import numpy as np

from ytingest.config import Settings
from ytingest.errors import ModelError, TranscribeError
from ytingest.items import DecodedAudio, TranscribedWindow
from ytingest.logs import get_logger
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.counters import StageCounters
from ytingest.pipeline.queues import take_waiting
from ytingest.ports import AsrResult, PreparingTranscriber, Transcriber
from ytingest.stages.decode import fail_unreadable
from ytingest.stages.disk import keep_for_retry

log = get_logger()

CLIMB_AFTER = 32  # ASR calls that fit at a halved batch size before it doubles again
BROKEN_AFTER = 5  # videos failed by model errors in a row, none stored between: the run stops

Outcome = TranscribedWindow | ModelError | TranscribeError


def run_settings(settings: Settings, transcriber: Transcriber) -> Settings:
    """A run's settings: ASR_BATCH_SIZE as the transcriber sized it (on CUDA with it unset, what the
    free VRAM holds), so the queue ahead of the model holds ASR_QUEUE_SIZE of those batches and
    a fitted batch of 32 can fill."""
    size = getattr(transcriber, "batch_size", None)
    if isinstance(size, int) and size != settings.asr_batch_size:
        return settings.model_copy(update={"asr_batch_size": size})
    return settings


def window_weight(d: DecodedAudio) -> int:
    """What a window counts for in the queue ahead of the model: its speech chunks (at least 1),
    or one per 30 s of audio when there are none (no batching, or not decoded yet)."""
    p = d.prepared
    if p is None:  # a whole file, for a transcriber that decodes by itself
        return max(1, math.ceil((d.file.video.duration or 30.0) / 30))
    return max(1, len(p.chunks) or round(p.seconds / 30))


def _transcribed(d: DecodedAudio, result: AsrResult, probability: float | None) -> TranscribedWindow:
    """What the speakers stage needs of one window: its segments (window time), audio and place."""
    p = d.prepared
    offset, index, last = (p.offset, p.index, p.last) if p is not None else (0.0, 0, True)
    return TranscribedWindow(
        d.file,
        result.segments,
        result.audio,
        result.audio_seconds,
        result.language,
        probability,
        offset,
        index,
        last,
    )


def transcribe_group(
    transcriber: Transcriber,
    group: list[DecodedAudio],
    *,
    batch_size: int | None = None,
    languages: dict[str, tuple[str, float | None] | None] | None = None,
) -> list[Outcome]:
    """One outcome per window, in order; prepared windows go through the model together.
    ``languages``: per video, its language (and detection probability) once known.
    Raises ModelError only when the model ran out of memory (the caller halves the batch).
    Executor only."""
    prepared = [d.prepared for d in group if d.prepared is not None]
    if not (isinstance(transcriber, PreparingTranscriber) and len(prepared) == len(group)):
        return [_whole_file(transcriber, d) for d in group]
    found = dict(languages or {})
    langs: list[tuple[str | None, float | None]] = []
    broken: dict[int, ModelError] = {}
    for k, (d, p) in enumerate(zip(group, prepared, strict=True)):
        known = found.get(d.file.video.id)
        if known is None and p.index == 0:  # a video's language: detected on its first window
            try:
                known = found[d.file.video.id] = transcriber.detect_language(p)
            except ModelError as exc:
                if exc.out_of_memory:
                    raise
                broken[k] = exc
        langs.append(known or (None, None))  # None: the model's own choice, per chunk
    if broken:  # those windows fail; the others go on without them
        rest = [d for k, d in enumerate(group) if k not in broken]
        done = iter(transcribe_group(transcriber, rest, batch_size=batch_size, languages=found))
        return [broken[k] if k in broken else next(done) for k in range(len(group))]
    try:
        results = transcriber.transcribe_prepared(
            prepared, batch_size=batch_size, languages=[lang for lang, _ in langs]
        )
    except ModelError as exc:
        if exc.out_of_memory:
            raise
        if len(group) == 1:
            return [exc]
        return [  # which window broke it: each alone, so the others are not failed with it
            transcribe_group(transcriber, [d], batch_size=batch_size, languages=found)[0] for d in group
        ]
    return [_transcribed(d, r, prob) for d, r, (_, prob) in zip(group, results, langs, strict=True)]


def _whole_file(transcriber: Transcriber, d: DecodedAudio) -> Outcome:
    """A transcriber that decodes by itself: the file is one window."""
    try:
        result = transcriber.transcribe(d.file.path)
    except (ModelError, TranscribeError) as exc:
        return exc
    return _transcribed(d, result, result.language_probability)


async def _transcribe_fitting(
    ctx: RunContext,
    transcriber: Transcriber,
    executor: Executor,
    group: list[DecodedAudio],
) -> list[Outcome]:
    """``transcribe_group`` at the live ASR batch size, halving it on out-of-memory until it fits."""
    tuning = ctx.tuning
    most = tuning.asr_batch_max or ctx.settings.asr_batch_size
    languages = {d.file.video.id: ctx.windows.language(d.file.video.id) for d in group}
    loop = asyncio.get_running_loop()
    while True:
        used = tuning.asr_batch_size
        call = functools.partial(transcribe_group, transcriber, group, batch_size=used, languages=languages)
        try:
            outcomes = await loop.run_in_executor(executor, call)
        except ModelError as exc:  # out of memory (transcribe_group returns any other error)
            if used <= 1 or ctx.settings.asr_batching == "off":  # nothing smaller to try
                return [exc] * len(group)
            if tuning.asr_batch_size == used:  # another worker may have halved it already
                tuning.asr_batch_size, tuning.asr_fits = used // 2, 0
                log.warning("tune", knob="ASR_BATCH_SIZE", before=used, after=used // 2, reason=str(exc))
            continue
        tuning.asr_fits += 1
        if tuning.asr_batch_size < most and tuning.asr_fits >= CLIMB_AFTER:
            before = tuning.asr_batch_size
            tuning.asr_batch_size, tuning.asr_fits = min(most, 2 * before), 0
            log.info(
                "tune",
                knob="ASR_BATCH_SIZE",
                before=before,
                after=tuning.asr_batch_size,
                reason="batches fit",
            )
        return outcomes


async def transcribe_worker(
    ctx: RunContext,
    transcriber: Transcriber,
    executor: Executor,
    inbox: asyncio.Queue[DecodedAudio | None],
    outbox: asyncio.Queue[TranscribedWindow | None],
    *,
    counters: StageCounters,
) -> None:
    """Take decoded windows until the end marker; hand on each window as it is transcribed.
    ``counters``: the model stage's (its failures are named by them)."""
    s = ctx.settings
    cross = s.asr_batching == "cross" and isinstance(transcriber, PreparingTranscriber)
    if ctx.tuning.asr_batch_max is None:  # the model's size: ASR_BATCH_SIZE, or what fits the GPU
        size = getattr(transcriber, "batch_size", None)
        ctx.tuning.asr_batch_size = ctx.tuning.asr_batch_max = (
            size if isinstance(size, int) else s.asr_batch_size
        )
    _count_redecoded(ctx, transcriber)  # the first worker to start takes the model's count as the base
    ended = False
    while not ended and (first := await inbox.get()) is not None:
        # the windows already waiting, up to a model batch of speech chunks
        group, ended = take_waiting(inbox, first, ctx.tuning.asr_batch_size if cross else 1, window_weight)
        group = [d for d in group if not ctx.windows.failed(d.file.video.id)]
        if not group:
            continue
        videos = {d.file.video.id: d for d in group}  # their progress began at decode
        chunks = sum(window_weight(d) for d in group)
        log.info("asr_batch", files=len(videos), windows=len(group), chunks=chunks)
        for vid, d in videos.items():
            window = d.prepared.index if d.prepared is not None else 0
            log.info("transcribe_start", video_id=vid, window=window, batch_files=len(videos))
            ctx.metrics.progress.reach(vid, d.prepared.end if d.prepared is not None else math.inf)
        try:
            async with ctx.turns.asr():
                t0 = counters.begin()
                outcomes = await _transcribe_fitting(ctx, transcriber, executor, group)
        except BaseException:
            if not s.keep_audio:
                for d in group:
                    d.file.path.unlink(missing_ok=True)
            raise
        done = [o for o in outcomes if isinstance(o, TranscribedWindow)]
        whole = sum(1 for o in done if o.last)
        counters.end(
            t0, audio_seconds=sum(o.seconds for o in done), items=whole, errors=len(group) - len(done)
        )
        _count_redecoded(ctx, transcriber)
        ms = round(1000 * (time.monotonic() - t0))
        for d, outcome in zip(group, outcomes, strict=True):
            await _settle(ctx, d, outcome, outbox, ms=ms, files=len(videos), stage=counters.name)


def _count_redecoded(ctx: RunContext, transcriber: Transcriber) -> None:
    """The run's ``asr_redecoded_chunks``: what the transcriber counts, since the run began."""
    total = getattr(transcriber, "chunks_redone", None)
    if isinstance(total, int):
        m = ctx.metrics
        m.redecoded_base = total if m.redecoded_base is None else m.redecoded_base
        m.asr_redecoded_chunks = total - m.redecoded_base


async def _settle(
    ctx: RunContext,
    d: DecodedAudio,
    outcome: Outcome,
    outbox: asyncio.Queue[TranscribedWindow | None],
    *,
    ms: int,
    files: int,
    stage: str,
) -> None:
    """One window's outcome: its video failed (in ``stage``), or the window goes on to the
    speakers stage."""
    video, progress = d.file.video, ctx.metrics.progress
    if isinstance(outcome, TranscribeError):
        await fail_unreadable(ctx, d.file, outcome, stage)
        return
    if isinstance(outcome, ModelError):
        if ctx.windows.drop(video.id):
            progress.end(video.id)
            kept = await asyncio.to_thread(keep_for_retry, d.file.path, ctx.settings.kept_dir)
            await ctx.fail(video, stage, f"{outcome} (audio kept for the retry in {kept.parent})")
            ctx.model_errors_in_row += 1
            if ctx.model_errors_in_row == BROKEN_AFTER and not ctx.stopping.is_set():
                # a GPU in a bad state fails every call: stop taking videos rather than fail them all
                log.error("model_broken", videos_failed_in_row=BROKEN_AFTER, reason=str(outcome))
                ctx.stopping.set()
        return
    ctx.model_errors_in_row = 0
    end = d.prepared.end if d.prepared is not None else outcome.seconds
    progress.advance(video.id, end, d.prepared.total if d.prepared is not None else None)
    if outcome.index == 0:  # later windows of the video are transcribed in this language
        ctx.windows.note_language(d.file, outcome.language, outcome.probability)
    if ctx.windows.transcribed(d.file, outcome.index, outcome.last) and not ctx.settings.keep_audio:
        d.file.path.unlink(missing_ok=True)  # every window is through the model
    log.debug("window_transcribed", video_id=video.id, window=outcome.index, ms=ms, batch_files=files)
    if not ctx.settings.speakers:  # nobody will hear it: not held while it waits in the queue
        outcome = replace(outcome, audio=np.zeros(0, dtype=np.float32))
    await outbox.put(outcome)
