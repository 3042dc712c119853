"""A video transcribed window by window against the same file transcribed whole (real model,
real speech: the bundled recordings looped into a 6-minute .m4a, windows of 2 minutes).

The two are not word for word the same, and cannot be: batched Whisper transcribes 30 s chunks
that VAD collects from the start of the audio it is given, so every chunk after a window border
holds different speech than the whole-file chunk at that time, and the model writes it
differently (tiny.en on these voices is far from stable). Moving where chunking starts by a few
seconds, with no windows at all, changes the text as much. The test states that: windows change
the text no more than such a shift does, every stretch of speech is still transcribed, and the
pipeline's own reassembly (``transcribe_group``, the speakers stage's ``label_window`` and
``WindowAssembly``, windows finishing in any order) puts the segments in order on the video's timeline.
"""

from __future__ import annotations

from pathlib import Path

import jiwer
import pytest

from ytingest.items import SAMPLE_RATE, AudioFile, DecodedAudio, Segment, TranscribedWindow, VideoRef
from ytingest.models.asr import WhisperTranscriber
from ytingest.models.batched_asr import prepare_audio
from ytingest.pipeline.assembly import WindowAssembly
from ytingest.stages.speakers import label_window
from ytingest.stages.transcribe import transcribe_group
from ytingest.testing.long_episodes import long_episode

pytestmark = pytest.mark.slow

SHIFT_S = 7  # the no-window comparison: the same audio with its first 7 s cut off


def _words(segments: list[Segment] | tuple[Segment, ...]) -> str:
    text = " ".join(s.text for s in segments).lower()
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


def test_windows_match_the_whole_file_as_closely_as_chunking_allows(tmp_path: Path) -> None:
    episode = long_episode(6, tmp_path)
    asr = WhisperTranscriber(batching="cross", batch_size=8, window_s=120)
    whole_audio = asr.prepare(episode.path)
    whole = asr.transcribe_prepared([whole_audio])[0].segments

    windows = list(asr.prepare_windows(episode.path))
    assert len(windows) == 3
    file = AudioFile(VideoRef(episode.id, ""), episode.path, 1)
    group = [DecodedAudio(file, w) for w in windows]
    assembly, transcript = WindowAssembly(), None
    for outcome in reversed(transcribe_group(asr, group)):  # as the pipeline does, in any order
        assert isinstance(outcome, TranscribedWindow)
        transcript = assembly.add(file, label_window(None, outcome)) or transcript
    assert transcript is not None
    windowed = transcript.segments

    starts = [s.start for s in windowed]
    assert starts == sorted(starts) and [s.idx for s in windowed] == list(range(len(windowed)))
    assert 0 <= starts[0] and windowed[-1].end <= episode.duration + 0.5
    assert transcript.audio_seconds == pytest.approx(whole_audio.seconds, abs=0.01)

    extractor = asr._model.feature_extractor
    shifted = asr.transcribe_prepared([prepare_audio(extractor, whole_audio.audio[SHIFT_S * SAMPLE_RATE :])])[
        0
    ]
    after_shift = [s for s in whole if s.start >= SHIFT_S]
    by_windows = jiwer.wer(_words(whole), _words(windowed))
    by_shift = jiwer.wer(_words(after_shift), _words(shifted.segments))
    print(f"WER windows vs whole {by_windows:.3f}; whole vs whole shifted {SHIFT_S} s {by_shift:.3f}")
    assert by_windows <= max(by_shift, 0.1) + 0.05

    for t0 in range(0, int(episode.duration) - 30, 30):  # speech in every 30 s stretch in both
        here = any(t0 <= s.start < t0 + 30 for s in whole)
        there = any(t0 - 5 <= s.start < t0 + 35 for s in windowed)
        assert there or not here, f"the windows lost the speech at {t0} s"
