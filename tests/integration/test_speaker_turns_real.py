"""Speaker attribution with the real models on real and synthetic speech: the real meeting
(voiceprints from ``tst00``, identification in ``tst01``), and a turn change inside one ASR
segment of the synthetic dialogues split into two rows with the right names."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.diarization import attribution_accuracy, der
from ytingest.config import Settings
from ytingest.items import SAMPLE_RATE, Segment, Voiceprint
from ytingest.models.asr import WhisperTranscriber
from ytingest.models.ge2e import Ge2eEncoder
from ytingest.speakers.setup import tagger_for
from ytingest.speakers.tagger import VoiceTagger
from ytingest.speakers.turns import speech_spans
from ytingest.speakers.voices import embed_voice, scan
from ytingest.testing.dialogues import VOICES_DIR, dialogue_episodes, dialogue_truth
from ytingest.testing.real_speech import REAL, RTTM
from ytingest.testing.rttm import read_rttm
from ytingest.testing.two_voices import solo_voiceprints

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def asr() -> Iterator[WhisperTranscriber]:
    yield WhisperTranscriber("bundled", device="cpu", batching="cross", word_timestamps=True)


@pytest.fixture(scope="module")
def encoder() -> Ge2eEncoder:
    return Ge2eEncoder("cpu")


def tagger(encoder: Ge2eEncoder, prints: list[Voiceprint], *, split: bool = True) -> VoiceTagger:
    return VoiceTagger.from_settings(encoder, prints, Settings(), split=split)  # the shipped defaults


@pytest.mark.parametrize("method", ["segmentation", "windows"])
def test_real_meeting_speakers_enrolled_from_one_part_are_named_in_the_other(
    asr: WhisperTranscriber, encoder: Ge2eEncoder, method: str
) -> None:
    """Four real voices enrolled from tst00; in tst01, ≥ 95% of the speech the rows cover is named
    right (duration-weighted, against the reference turns), splitting on, with either
    SPEAKER_DIARIZATION; and no row names a voice that is not speaking there more than the
    reference allows (DER below 1)."""
    prints = solo_voiceprints(
        encoder, asr.prepare(REAL / "tst00.mp3").audio, "tst00", read_rttm(RTTM)["tst00"]
    )
    assert sorted(p.name for p in prints) == ["FEO070", "FEO072", "MEE071", "MEE073"]
    r = asr.transcribe(REAL / "tst01.mp3")
    chosen = tagger_for(Settings(speaker_diarization=method), encoder, prints)  # type: ignore[arg-type]
    tagged = chosen.tag(r.audio, SAMPLE_RATE, r.segments)
    rows = [(sp.start, sp.end, s.speaker or "") for s in tagged.segments for sp in speech_spans([s])]
    reference = [(t.start, t.end, t.speaker) for t in read_rttm(RTTM)["tst01"]]
    assert attribution_accuracy(reference, rows) >= 0.95, rows
    assert der(reference, rows).confusion <= 0.1 * der(reference, rows).total


def tight_dialogue(asr: WhisperTranscriber) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """The first half of Ada's first turn in dlg01 joined, with no pause, to the second half of
    Bruno's reply, both cut at word boundaries: one sentence that changes voice halfway, as in a
    real interruption. Returns the audio and the two turns in its time."""
    ep = dialogue_episodes()[0]
    whole = asr.transcribe(ep.path)
    words = [w for s in whole.segments for w in s.words]
    first, second = dialogue_truth()[ep.id][:2]

    def mid_sentence(i: int) -> bool:  # a cut after word i leaves its sentence open
        return 0 < i < len(words) - 1 and words[i].text.strip()[-1:].isalnum()

    def near(t: float) -> int:
        ok = [i for i in range(len(words)) if mid_sentence(i)]
        return min(ok, key=lambda i: abs((words[i].start + words[i].end) / 2 - t))

    ada_end = words[near(first.start + 0.55 * (first.end - first.start))].end
    bruno_start = words[near(second.start + 0.45 * (second.end - second.start)) + 1].start
    a = whole.audio[int(first.start * SAMPLE_RATE) : int(ada_end * SAMPLE_RATE)]
    b = whole.audio[int(bruno_start * SAMPLE_RATE) : int(second.end * SAMPLE_RATE)]
    cut = len(a) / SAMPLE_RATE
    turns = [(first.speaker, 0.0, cut), (second.speaker, cut, cut + len(b) / SAMPLE_RATE)]
    return np.concatenate([a, b]), turns


def test_a_segment_spanning_two_voices_becomes_two_rows_with_the_right_names(
    asr: WhisperTranscriber, encoder: Ge2eEncoder, tmp_path: Path
) -> None:
    """An interruption: one sentence that changes voice halfway. tiny.en cuts its segments there by
    itself on these clean voices, so its segments are joined into the one segment a bigger model
    or a noisier room gives (real words and times, real audio). Splitting on: two rows, cut within
    0.5 s of the change, Ada's words before it and Bruno's after; splitting off: one row."""
    prints = [vp for src in scan(VOICES_DIR) if (vp := embed_voice(encoder, VOICES_DIR, src)[0]) is not None]
    audio, turns = tight_dialogue(asr)
    (first, _, change), (second, _, _) = turns
    path = tmp_path / "tight.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    result = asr.transcribe(path)
    words = tuple(w for s in result.segments for w in s.words)
    text = " ".join(s.text for s in result.segments)
    seg = Segment(0, result.segments[0].start, result.segments[-1].end, text, words=words)
    assert seg.start < change - 1 and seg.end > change + 1
    rows = tagger(encoder, prints).tag(audio, SAMPLE_RATE, (seg,)).segments
    assert [r.speaker for r in rows] == [first, second]
    assert abs(rows[0].end - change) <= 0.5 and rows[1].start == rows[0].end
    assert " ".join(r.text for r in rows).split() == seg.text.split()
    whole = tagger(encoder, prints, split=False).tag(audio, SAMPLE_RATE, (seg,)).segments
    assert len(whole) == 1 and whole[0].text == seg.text
