"""speakers: who spoke each transcribed window, SPEAKER_WORKERS at once in their own executor; each
window goes on to embedding with its segments on the video's timeline (``LabelledWindow``).

Speaker ID is host work: mel frames, the speaker encoder (on the GPU where torch has CUDA, else
the CPU), clustering and splitting at turns. Inside the model's thread it kept the accelerator
waiting for it; as a stage of its own it runs beside the model, and the monitor sees it (its
queue, busy time, verdict and advice: SPEAKER_WORKERS). With no tagger (SPEAKERS=false) windows
only have their segments moved onto the video's timeline here, in the loop thread.

A tagger failing on a window stores the whole video without speaker labels and with a warning:
labels are all or nothing per video (``pipeline/assembly.py``).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import replace

from ytingest.items import (
    SAMPLE_RATE,
    AnonymousVoice,
    LabelledWindow,
    Segment,
    TranscribedWindow,
    WindowResult,
)
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.counters import StageCounters
from ytingest.ports import SpeakerTagger


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
    outbox: asyncio.Queue[LabelledWindow | None],
    *,
    counters: StageCounters,
) -> None:
    """Take transcribed windows until the end marker; hand each on once its speakers are labelled.
    ``counters``: the speakers stage's."""
    loop = asyncio.get_running_loop()
    while (w := await inbox.get()) is not None:
        if ctx.windows.failed(w.file.video.id):  # the model failed on another window of this video
            continue
        if tagger is not None and w.segments:
            async with ctx.turns.alone():  # on a CPU, not beside an ASR call (pipeline/turns.py)
                t0 = counters.begin()
                try:
                    result = await loop.run_in_executor(executor, label_window, tagger, w)
                except BaseException:
                    counters.end(t0, ok=False)
                    raise
        else:
            t0 = counters.begin()
            result = label_window(None, w)
        counters.end(t0, audio_seconds=w.seconds, items=1 if w.last else 0)
        await outbox.put(LabelledWindow(w.file, result))
