"""Segmentation-based diarization's own rules, on a scripted segmentation and a fake encoder (a
clip's vector is the voice whose number fills its samples), so each rule is checked alone; the
real model's output is checked against real reference turns in tests/integration."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ytingest.items import Segment, Voiceprint, Word
from ytingest.models import file_sha256
from ytingest.models.segmentation import (
    CHUNK,
    FRAME_STEP,
    FRAMES,
    RECEPTIVE,
    SHA256,
    WEIGHTS,
    Segmentation,
    chunk_starts,
)
from ytingest.speakers.clustering import constrained_cluster, unit
from ytingest.speakers.diarize import SegmentationTagger

RATE = 16_000
RNG = np.random.default_rng(5)
VOICES = unit(RNG.normal(size=(4, 32)).astype(np.float32))
Script = Sequence[tuple[float, float, int]]  # (start s, end s, voice)


class VoiceOf:
    """Fake encoder: the mean voice of a clip's samples (sample value = voice number, -1 silence)."""

    name, dim = "fake", 32

    def embed(self, clips: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        out = []
        for clip in clips:
            ids, counts = np.unique(clip.astype(int), return_counts=True)
            mix = sum((c * VOICES[i] for i, c in zip(ids, counts, strict=True) if i >= 0), np.zeros(32))
            out.append(mix + 0.01 * RNG.normal(size=32))
        return unit(np.asarray(out, dtype=np.float32))


class Scripted:
    """Fake segmenter: who speaks when comes from ``script``; in each chunk the voices heard take
    local slots in order of first appearance (so slot numbers mean nothing across chunks)."""

    def __init__(self, script: Script, step_s: float = 1.0) -> None:
        self.script, self.step = script, int(step_s * RATE)

    def segment(self, audio: npt.NDArray[np.float32]) -> Segmentation:
        starts = chunk_starts(len(audio), self.step)
        act = np.zeros((len(starts), FRAMES, 3), dtype=bool)
        centres = (np.arange(FRAMES) * FRAME_STEP + RECEPTIVE / 2) / RATE
        for c, s in enumerate(starts):
            t = s / RATE + centres
            heard = [v for a, b, v in sorted(self.script) if a < t[-1] and b > t[0]]
            slots = list(dict.fromkeys(heard))[:3]
            for a, b, v in self.script:
                if v in slots:
                    act[c, :, slots.index(v)] |= (t >= a) & (t < b)
        return Segmentation(starts, act, len(audio))


def audio_of(script: Script, seconds: float) -> npt.NDArray[np.float32]:
    """Samples hold the voice speaking (the later one where two overlap), -1 in silence."""
    audio = np.full(int(seconds * RATE), -1.0, dtype=np.float32)
    for a, b, v in script:
        audio[int(a * RATE) : int(b * RATE)] = v
    return audio


def segment_of(spec: Sequence[tuple[float, float, str]]) -> Segment:
    words = tuple(Word(a, b, f" {t}") for a, b, t in spec)
    return Segment(0, spec[0][0], spec[-1][1], " ".join(t for *_, t in spec), words=words)


def tagger(script: Script, prints: Sequence[int] = ()) -> SegmentationTagger:
    vp = [Voiceprint(f"v{i}", VOICES[i], "fake", {}) for i in prints]
    return SegmentationTagger(
        Scripted(script),  # type: ignore[arg-type]
        VoiceOf(),
        vp,
        threshold=0.8,
        margin=0.05,
        cluster_distance=0.3,
    )


# voice 0 speaks 0-12 s, voice 1 answers 11-24 s (1 s of overlap), voice 0 again 25-30 s
DIALOGUE = [(0.0, 12.0, 0), (11.0, 24.0, 1), (25.0, 30.0, 0)]
WORDS = [(1.0, 1.5, "so"), (1.5, 2.0, "we"), (8.0, 8.5, "went"), (11.2, 11.8, "yes"),
         (15.0, 15.5, "and"), (16.0, 16.6, "then"), (26.0, 26.5, "right"), (27.0, 27.6, "ok")]  # fmt: skip


def test_the_shipped_model_file_is_the_one_whose_hash_is_recorded() -> None:
    """The vendored ONNX file hashes to the sha256 in models/segmentation.py and in its licence file."""
    assert file_sha256(WEIGHTS) == SHA256
    assert SHA256 in (WEIGHTS.parent / "LICENSE-pyannote-segmentation").read_text()


def test_chunks_cover_the_audio_with_the_last_one_ending_with_it() -> None:
    assert chunk_starts(5 * RATE, RATE).tolist() == [0]  # shorter than a chunk: one, padded
    starts = chunk_starts(int(12.5 * RATE), RATE)
    assert starts.tolist() == [0, RATE, 2 * RATE, int(2.5 * RATE)]
    assert starts[-1] + CHUNK == int(12.5 * RATE)


def test_constrained_clustering_never_joins_two_members_of_one_group() -> None:
    """Two identical vectors of one chunk stay apart; the same voice in other chunks joins them."""
    v = np.stack([VOICES[0], VOICES[0], VOICES[0], VOICES[1]])
    labels = constrained_cluster(v, np.array([0, 0, 1, 1]), 0.3)
    assert labels[0] != labels[1]
    assert labels[2] in (labels[0], labels[1]) and labels[3] not in (labels[0], labels[1], labels[2])
    assert constrained_cluster(v, np.arange(4), 0.3).tolist() == [0, 0, 0, 1]  # unconstrained


def test_two_anonymous_voices_and_the_words_take_the_voice_of_their_frames() -> None:
    """Nobody enrolled: two anonymous voices; a segment spanning the turn is cut at the first word
    of the answer; the first voice's return at 25 s has the first voice's key again."""
    script = DIALOGUE
    seg = segment_of(WORDS)
    tagged = tagger(script).tag(audio_of(script, 30.0), RATE, (seg,), window=3)
    who = [(p.text, p.speaker) for p in tagged.segments]
    assert [text for text, _ in who] == ["so we went", "yes", "and then", "right ok"]
    first, second = who[0][1], who[2][1]
    assert first != second and {first, second} == {v.key for v in tagged.voices}
    assert all(k.startswith("?3.") for k in (first, second))
    assert who[3][1] == first


def test_overlap_comes_from_the_segmentation_and_flags_only_the_overlapped_words() -> None:
    """The word said while both voices are active (11.2-11.8 s) is its own piece, flagged overlap;
    no other piece is."""
    tagged = tagger(DIALOGUE).tag(audio_of(DIALOGUE, 30.0), RATE, (segment_of(WORDS),))
    flagged = [p.text for p in tagged.segments if p.overlap]
    assert flagged == ["yes"], [(p.text, p.speaker, p.overlap) for p in tagged.segments]


def test_an_enrolled_voice_is_named_and_the_stranger_stays_anonymous() -> None:
    tagged = tagger(DIALOGUE, prints=[1]).tag(audio_of(DIALOGUE, 30.0), RATE, (segment_of(WORDS),))
    speakers = {p.text: p.speaker for p in tagged.segments}
    assert speakers["and then"] == "v1"
    assert speakers["so we went"] is not None and speakers["so we went"].startswith("?0.")
    assert [v.key for v in tagged.voices] == [speakers["so we went"]]  # only anonymous voices listed


def test_no_speech_found_leaves_the_segments_as_they_were() -> None:
    seg = segment_of(WORDS)
    tagged = tagger([]).tag(audio_of([], 30.0), RATE, (seg,))
    assert tagged.segments == (seg,) and tagged.voices == ()
