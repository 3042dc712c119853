"""transcribe: ASR (and speaker ID, when a tagger is given) in an executor, ASR_WORKERS at once.

Files arrive decoded (stages/decode.py). With ``ASR_BATCHING=cross`` a worker takes every
decoded file already waiting (up to ASR_BATCH_SIZE files, never waiting for more) and their
speech chunks share model batches; otherwise one file per call.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Protocol

from ytingest.errors import TranscribeError
from ytingest.items import SAMPLE_RATE, DecodedAudio, Segment, Transcript
from ytingest.logs import get_logger
from ytingest.models.asr import AsrResult
from ytingest.models.speakers import SpeakerTagger
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.queues import take_waiting
from ytingest.stages.decode import PreparingTranscriber, fail_unreadable

log = get_logger()

Outcome = tuple[tuple[Segment, ...], float, str] | TranscribeError


class Transcriber(Protocol):
    """Synchronous: runs in an executor thread."""

    name: str

    def transcribe(self, path: Path) -> AsrResult: ...


def _tagged(tagger: SpeakerTagger | None, result: AsrResult) -> tuple[tuple[Segment, ...], float, str]:
    segments = result.segments
    if tagger is not None and segments:
        segments = tagger.tag(result.audio, SAMPLE_RATE, segments)
    return segments, result.audio_seconds, result.language


def transcribe_file(
    transcriber: Transcriber, tagger: SpeakerTagger | None, path: Path
) -> tuple[tuple[Segment, ...], float, str]:
    """ASR then speaker tagging on the same decoded audio (no second decode). Executor only."""
    return _tagged(tagger, transcriber.transcribe(path))


def transcribe_group(
    transcriber: Transcriber, tagger: SpeakerTagger | None, group: list[DecodedAudio]
) -> list[Outcome]:
    """One outcome per file, in order; prepared files go through the model together. Executor only."""
    prepared = [d.prepared for d in group if d.prepared is not None]
    if isinstance(transcriber, PreparingTranscriber) and len(prepared) == len(group):
        try:
            results = transcriber.transcribe_prepared(prepared)
        except TranscribeError as exc:
            return [exc] * len(group)
        return [_tagged(tagger, r) for r in results]
    outcomes: list[Outcome] = []
    for d in group:
        try:
            outcomes.append(transcribe_file(transcriber, tagger, d.file.path))
        except TranscribeError as exc:
            outcomes.append(exc)
    return outcomes


async def transcribe_worker(
    ctx: RunContext,
    transcriber: Transcriber,
    tagger: SpeakerTagger | None,
    executor: Executor,
    inbox: asyncio.Queue[DecodedAudio | None],
    outbox: asyncio.Queue[Transcript | None],
) -> None:
    """Take decoded files until the end marker; hand on transcripts in order; delete the audio."""
    loop = asyncio.get_running_loop()
    s = ctx.settings
    cross = s.asr_batching == "cross" and isinstance(transcriber, PreparingTranscriber)
    most = s.asr_batch_size if cross else 1
    ended = False
    while not ended and (first := await inbox.get()) is not None:
        group, ended = take_waiting(inbox, first, most)
        for d in group:
            log.info("transcribe_start", video_id=d.file.video.id, bytes=d.file.size, batch_files=len(group))
        counters = ctx.metrics.stages["asr"]
        try:
            async with ctx.turns.asr():
                t0 = counters.begin()
                outcomes = await loop.run_in_executor(executor, transcribe_group, transcriber, tagger, group)
        except BaseException:
            if not s.keep_audio:
                for d in group:
                    d.file.path.unlink(missing_ok=True)
            raise
        ok = [(d, o) for d, o in zip(group, outcomes, strict=True) if not isinstance(o, TranscribeError)]
        counters.end(t0, audio_seconds=sum(o[1] for _, o in ok), items=len(ok), errors=len(group) - len(ok))
        ms = round(1000 * (time.monotonic() - t0))
        for d, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, TranscribeError):
                await fail_unreadable(ctx, d.file, outcome)
                continue
            if not s.keep_audio:
                d.file.path.unlink(missing_ok=True)
            segments, seconds, language = outcome
            log.info(
                "transcribe_done",
                video_id=d.file.video.id,
                segments=len(segments),
                audio_seconds=round(seconds, 2),
                ms=ms,
                batch_files=len(group),
            )
            await outbox.put(Transcript(d.file.video, segments, seconds, language))
