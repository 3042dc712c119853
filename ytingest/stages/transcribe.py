"""transcribe: ASR (and speaker ID, when a tagger is given) in an executor, ASR_WORKERS at once."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Protocol

import structlog

from ytingest.errors import TranscribeError
from ytingest.items import AudioFile, Segment, Transcript
from ytingest.models.asr import SAMPLE_RATE, AsrResult
from ytingest.models.speakers import SpeakerTagger
from ytingest.run import Closing, RunContext

log = structlog.get_logger("ytingest")


class Transcriber(Protocol):
    """Synchronous: runs in an executor thread."""

    name: str

    def transcribe(self, path: Path) -> AsrResult: ...


def transcribe_file(
    transcriber: Transcriber, tagger: SpeakerTagger | None, path: Path
) -> tuple[tuple[Segment, ...], float, str]:
    """ASR then speaker tagging on the same decoded audio (no second decode). Executor only."""
    result = transcriber.transcribe(path)
    segments = result.segments
    if tagger is not None and segments:
        segments = tagger.tag(result.audio, SAMPLE_RATE, segments)
    return segments, result.audio_seconds, result.language


def quarantine(path: Path, folder: Path) -> Path:
    """Move a file ASR could not read out of the audio folder, for a person to look at."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    try:
        path.replace(target)
    except OSError:
        return path
    return target


async def transcribe_worker(
    ctx: RunContext,
    transcriber: Transcriber,
    tagger: SpeakerTagger | None,
    executor: Executor,
    inbox: asyncio.Queue[AudioFile | None],
    outbox: asyncio.Queue[Transcript | None],
    closing: Closing,
) -> None:
    """Take downloaded files until the end marker; hand on transcripts; delete the audio."""
    loop = asyncio.get_running_loop()
    while (audio := await inbox.get()) is not None:
        vlog = log.bind(video_id=audio.video.id)
        vlog.info("transcribe_start", bytes=audio.size)
        counters = ctx.metrics.stages["asr"]
        t0 = counters.begin()
        try:
            segments, seconds, language = await loop.run_in_executor(
                executor, transcribe_file, transcriber, tagger, audio.path
            )
        except TranscribeError as exc:
            counters.end(t0, ok=False)
            kept = await asyncio.to_thread(quarantine, audio.path, ctx.settings.ytingest_home / "quarantine")
            await ctx.fail(audio.video, "transcribe", f"{exc} (file kept in {kept})", permanent=True)
            continue
        finally:
            if not ctx.settings.keep_audio:
                audio.path.unlink(missing_ok=True)
        counters.end(t0, audio_seconds=seconds)
        ms = round(1000 * (time.monotonic() - t0))
        vlog.info("transcribe_done", segments=len(segments), audio_seconds=round(seconds, 2), ms=ms)
        await outbox.put(Transcript(audio.video, segments, seconds, language))
    await closing.worker_done(inbox)
