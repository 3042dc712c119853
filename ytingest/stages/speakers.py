"""speakers: who spoke each transcribed window, SPEAKER_WORKERS at once in their own executor; then
each video is put back together from its windows (``pipeline/assembly.py``) and handed on.

Speaker ID is host work: mel frames, the speaker encoder (on the GPU where torch has CUDA, else
the CPU), clustering and splitting at turns. Inside the model's thread it kept the accelerator
waiting for it; as a stage of its own it runs beside the model, and the monitor sees it (its
queue, busy time, verdict and advice: SPEAKER_WORKERS). With no tagger (SPEAKERS=false) windows
only have their segments moved onto the video's timeline here, in the loop thread.

A tagger failing on a window stores the whole video without speaker labels and with a warning:
labels are all or nothing per video. The video's audio file is deleted (unless KEEP_AUDIO) once
its last window is through.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import replace

from ytingest.items import SAMPLE_RATE, AnonymousVoice, Segment, TranscribedWindow, Transcript
from ytingest.logs import get_logger
from ytingest.models.speakers import SpeakerTagger
from ytingest.pipeline.assembly import WindowResult
from ytingest.pipeline.context import RunContext

log = get_logger()


def window_seconds(w: TranscribedWindow) -> float:
    """Audio-seconds one transcribed window is worth (the pipeline description's ``worth``)."""
    return w.seconds


def label_window(tagger: SpeakerTagger | None, w: TranscribedWindow) -> WindowResult:
    """Tag the window's speakers on its own audio, then move its segments onto the video's
    timeline (without their words: nothing after this stage needs them). Executor only when
    ``tagger`` is given."""
    segments, warning = w.segments, None
    voices: tuple[AnonymousVoice, ...] = ()
    if tagger is not None and segments:
        try:
            tagged = tagger.tag(w.audio, SAMPLE_RATE, segments, window=w.index)
            segments, voices = tagged.segments, tagged.voices
        except Exception as exc:  # speaker ID failing must not lose the transcript
            warning = f"speaker identification failed: {' '.join(str(exc).split())[:300]}"
    shifted = tuple(_shifted(s, w.offset) for s in segments)
    return WindowResult(w.index, w.last, shifted, w.seconds, w.language, w.probability, warning, voices)


def _shifted(s: Segment, offset: float) -> Segment:
    """On the video's timeline, without its words."""
    if not offset:
        return replace(s, words=()) if s.words else s
    return replace(s, start=round(s.start + offset, 3), end=round(s.end + offset, 3), words=())


async def speakers_worker(
    ctx: RunContext,
    tagger: SpeakerTagger | None,
    executor: Executor,
    inbox: asyncio.Queue[TranscribedWindow | None],
    outbox: asyncio.Queue[Transcript | None],
) -> None:
    """Take transcribed windows until the end marker; hand on each video's transcript once its last
    window is labelled, then delete its audio (unless KEEP_AUDIO)."""
    counters = ctx.metrics.stages["speakers"]
    loop = asyncio.get_running_loop()
    while (w := await inbox.get()) is not None:
        video = w.file.video
        if ctx.windows.failed(video.id):  # the model failed on another window of this video
            continue
        t0 = counters.begin()
        try:
            if tagger is not None and w.segments:
                result = await loop.run_in_executor(executor, label_window, tagger, w)
            else:
                result = label_window(None, w)
        except BaseException:
            counters.end(t0, ok=False)
            raise
        transcript = ctx.windows.add(w.file, result)
        counters.end(t0, audio_seconds=w.seconds, items=0 if transcript is None else 1)
        if transcript is not None:
            await _hand_on(ctx, w, transcript, outbox)


async def _hand_on(
    ctx: RunContext, w: TranscribedWindow, transcript: Transcript, outbox: asyncio.Queue[Transcript | None]
) -> None:
    """A whole video: out of the model's progress view, its audio deleted, on to embedding."""
    video = transcript.video
    ctx.metrics.progress.end(video.id)
    if not ctx.settings.keep_audio:
        w.file.path.unlink(missing_ok=True)
    if transcript.warning:
        log.warning("stored_with_warning", video_id=video.id, warning=transcript.warning)
    log.info(
        "transcribe_done",
        video_id=video.id,
        segments=len(transcript.segments),
        audio_seconds=round(transcript.audio_seconds, 2),
        language=transcript.language,
    )
    await outbox.put(transcript)
