"""Splitting at speaker turns and the tagger's decisions, on synthetic vectors (a fake encoder that
returns a chosen voice per moment), so each rule is checked on its own."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ytingest.items import Segment, Voiceprint, Word
from ytingest.speakers.clustering import unit
from ytingest.speakers.tagger import VoiceTagger
from ytingest.speakers.turns import WINDOW_S, Span, Windows, smooth, speech_spans, split_at_turns, windows

RATE = 100  # samples per second for the fake audio: sample value = the voice speaking then
RNG = np.random.default_rng(3)
VOICES = unit(RNG.normal(size=(4, 32)).astype(np.float32))


class VoiceAt:
    """A fake encoder: a clip's vector is the mean of the voices whose numbers fill its samples."""

    name, dim = "fake", 32

    def embed(self, clips: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        out = []
        for clip in clips:
            ids, counts = np.unique(clip.astype(int), return_counts=True)
            mix = sum(c * VOICES[i] for i, c in zip(ids, counts, strict=True) if i >= 0)
            out.append(mix + 0.02 * RNG.normal(size=32))
        return unit(np.asarray(out, dtype=np.float32))


def audio_of(turns: Sequence[tuple[float, float, int]], seconds: float) -> npt.NDArray[np.float32]:
    audio = np.full(int(seconds * RATE), -1.0, dtype=np.float32)
    for a, b, voice in turns:
        audio[int(a * RATE) : int(b * RATE)] = voice
    return audio


def words(spec: Sequence[tuple[float, float, str]]) -> tuple[Word, ...]:
    return tuple(Word(a, b, f" {t}") for a, b, t in spec)


def test_speech_spans_join_close_words_and_skip_silence() -> None:
    seg = Segment(0, 0.0, 9.0, "a b c", words=words([(0.0, 0.5, "a"), (0.7, 1.0, "b"), (5.0, 5.4, "c")]))
    assert speech_spans([seg]) == [Span(0.0, 1.0), Span(5.0, 5.4)]


def test_windows_cover_speech_only_with_the_last_one_ending_with_it() -> None:
    wins = windows([Span(0.0, 4.0), Span(10.0, 10.2), Span(19.9, 20.0)], 20.0)
    assert wins[0] == Span(0.0, WINDOW_S) and wins[-3].end == 4.0
    assert all(w.end <= 4.0 for w in wins[:-2])
    short = wins[-2]  # widened to MIN_WINDOW_S around the 0.2 s of speech
    assert round(short.end - short.start, 3) == 0.5 and short.start < 10.0 < 10.2 < short.end
    assert wins[-1] == Span(19.5, 20.0)  # at the end of the audio: widened backwards, not past it


def test_a_one_word_flip_is_smoothed_away() -> None:
    ws = words([(0, 0.4, "a"), (0.4, 0.8, "b"), (0.8, 1.0, "c"), (1.0, 1.4, "d"), (1.4, 1.8, "e")])
    assert smooth(ws, [0, 0, 1, 0, 0]) == [0, 0, 0, 0, 0]
    assert smooth(ws, [0, 0, 1, 1, 1]) == [0, 0, 1, 1, 1]  # 0.8 s of the other voice is a turn


def test_a_segment_whose_words_change_speaker_is_cut_at_the_word_boundary() -> None:
    ws = words([(0.0, 0.5, "hello"), (0.5, 1.0, "there"), (1.2, 1.6, "yes"), (1.6, 2.2, "indeed")])
    seg = Segment(3, 0.0, 2.3, "hello there yes indeed", words=ws)
    wins = Windows([Span(0.0, 1.0), Span(1.1, 2.3)])
    pieces = split_at_turns(seg, wins, [0, 1], split=True)
    assert [(p.segment.start, p.segment.end, p.segment.text, p.label) for p in pieces] == [
        (0.0, 1.2, "hello there", 0),
        (1.2, 2.3, "yes indeed", 1),
    ]
    assert [p.label for p in split_at_turns(seg, wins, [0, 1], split=False)] == [1]  # majority, whole


def tagger(prints: int, **kw: float) -> VoiceTagger:
    vp = [Voiceprint(f"v{i}", VOICES[i], "fake", {}) for i in range(prints)]
    args = {"threshold": 0.8, "margin": 0.05, "cluster_distance": 0.3, **kw}
    return VoiceTagger(VoiceAt(), vp, **args)  # type: ignore[arg-type]


def dialogue() -> tuple[npt.NDArray[np.float32], tuple[Segment, ...]]:
    """Voice 0 for 4 s, then voice 2 for 4 s, inside ONE ASR segment."""
    audio = audio_of([(0.0, 4.0, 0), (4.0, 8.0, 2)], 9.0)
    ws = words([(k * 0.5, k * 0.5 + 0.45, f"w{k}") for k in range(16)])
    return audio, (Segment(0, 0.0, 8.0, " ".join(f"w{k}" for k in range(16)), words=ws),)


def test_enrolled_voice_is_named_and_the_stranger_becomes_an_anonymous_voice_in_its_own_piece() -> None:
    audio, segs = dialogue()
    out = tagger(2).tag(audio, RATE, segs, window=7)
    assert [s.speaker for s in out.segments] == ["v0", "?7.0"]
    assert abs(out.segments[0].end - 4.0) <= 0.5 and out.segments[1].text.startswith("w8")
    (voice,) = out.voices
    assert voice.key == "?7.0" and float(voice.vector @ VOICES[2]) > 0.95


def test_with_no_voiceprints_both_voices_are_anonymous_and_distinct() -> None:
    audio, segs = dialogue()
    out = tagger(0).tag(audio, RATE, segs)
    assert len({s.speaker for s in out.segments}) == 2 and len(out.voices) == 2


def test_with_splitting_off_the_segment_stays_whole() -> None:
    audio, segs = dialogue()
    out = tagger(3, split=False).tag(audio, RATE, segs)
    assert len(out.segments) == 1 and out.segments[0].speaker in {"v0", "v2"}


def test_a_window_claimed_by_no_voiceprint_is_not_forced_onto_the_nearest() -> None:
    """Voice 3 is far from v0..v2: its windows stay anonymous even though v0 is 'nearest'."""
    audio = audio_of([(0.0, 4.0, 3)], 5.0)
    seg = Segment(0, 0.0, 4.0, "x", words=words([(k * 0.5, k * 0.5 + 0.4, "x") for k in range(8)]))
    out = tagger(3).tag(audio, RATE, (seg,))
    assert [s.speaker for s in out.segments] == ["?0.0"]


def test_a_window_between_two_voices_in_play_is_flagged_as_overlap() -> None:
    """The rule itself: a window that fits its own voice poorly (an even mix of voices 0 and 1,
    cosine ~0.71 < OVERLAP_FIT) is overlapped when a second voice is in play; the clean windows
    are not; with a single voice in play nothing is (a poor fit alone is not a second voice).
    How often that finds real overlap is measured on the real meeting (bench/speakers.py)."""
    a, b = np.eye(32, dtype=np.float32)[:2]  # two orthogonal voices
    refs = np.stack([a, b])
    vecs = np.stack([a, unit((a + b)[None, :])[0], b])
    flags = tagger(2)._overlapped(vecs, np.array([0, 0, 1]), refs)
    assert flags.tolist() == [0.0, 1.0, 0.0]
    assert tagger(2)._overlapped(vecs, np.array([0, 0, 0]), refs).tolist() == [0.0, 0.0, 0.0]


def test_a_strangers_short_reply_is_not_given_an_enrolled_name() -> None:
    """A 1 s reply by an unenrolled voice (cosine ~0.65 to the host) between two stretches of
    the enrolled host: it stays an anonymous voice, however short (the review's repro)."""
    saved = VOICES.copy()
    VOICES[3] = unit((0.65 * VOICES[0] + 0.76 * VOICES[3])[None, :])[0]  # in place: VoiceAt reads it
    try:
        audio = audio_of([(0.0, 4.0, 0), (4.0, 5.0, 3), (5.0, 9.0, 0)], 10.0)
        ws = words([(k * 0.5, k * 0.5 + 0.45, f"w{k}") for k in range(18)])
        seg = Segment(0, 0.0, 9.0, " ".join(f"w{k}" for k in range(18)), words=ws)
        out = tagger(1, threshold=0.8, cluster_distance=0.25).tag(audio, RATE, (seg,))
    finally:
        VOICES[:] = saved
    assert [s.speaker for s in out.segments] == ["v0", "?0.0", "v0"]
    assert len(out.voices) == 1
