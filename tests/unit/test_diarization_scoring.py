"""The diarization scorer (tests/support/diarization.py) on hand-computed cases, and cross-checked
against a brute-force scorer on a 0.1 s grid for random inputs."""

from __future__ import annotations

import itertools
import math
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest

from tests.support.diarization import (
    DerResult,
    attribution_accuracy,
    der,
    mapped_accuracy,
    optimal_mapping,
    overlap_scores,
    rows,
)
from ytingest.testing.dialogues import Turn
from ytingest.testing.real_speech import RTTM
from ytingest.testing.rttm import read_rttm, write_rttm
from ytingest.testing.two_voices import RTTM as TWO_VOICES_RTTM
from ytingest.testing.two_voices import single_speaker_stretches, two_voices_episodes

Row = tuple[float, float, str | None]
TWO = [(0.0, 5.0, "A"), (5.0, 10.0, "B")]  # two speakers, 5 s each, no overlap


def approx(result: DerResult, der_: float, missed: float, fa: float, confusion: float, total: float) -> None:
    assert astuple(result) == pytest.approx(astuple(DerResult(der_, missed, fa, confusion, total)))


def test_perfect_hypothesis_scores_zero_whatever_its_labels() -> None:
    approx(der(TWO, TWO), 0, 0, 0, 0, 10)
    approx(der(TWO, [(0.0, 5.0, "x"), (5.0, 10.0, "y")]), 0, 0, 0, 0, 10)


def test_empty_hypothesis_misses_everything() -> None:
    approx(der(TWO, []), 1, 10, 0, 0, 10)
    approx(der(TWO, [(0.0, 10.0, None)]), 1, 10, 0, 0, 10)  # unlabelled rows claim no speaker


def test_swapped_labels_are_fixed_by_the_mapping_but_not_by_names() -> None:
    swapped = [(0.0, 5.0, "B"), (5.0, 10.0, "A")]
    approx(der(TWO, swapped), 0, 0, 0, 0, 10)
    assert optimal_mapping(TWO, swapped) == {"B": "A", "A": "B"}
    assert attribution_accuracy(TWO, swapped) == 0.0
    assert mapped_accuracy(TWO, swapped) == 1.0


def test_known_confusion_fraction() -> None:
    """A speaks 0-6, B 6-10; the hypothesis keeps A's label until 8: 2 s of 10 confused."""
    ref = [(0.0, 6.0, "A"), (6.0, 10.0, "B")]
    hyp = [(0.0, 8.0, "u1"), (8.0, 10.0, "u2")]
    approx(der(ref, hyp), 0.2, 0, 0, 2, 10)
    assert optimal_mapping(ref, hyp) == {"u1": "A", "u2": "B"}
    assert mapped_accuracy(ref, hyp) == pytest.approx(0.8)
    assert attribution_accuracy(ref, [(0.0, 8.0, "A"), (8.0, 10.0, "B")]) == pytest.approx(0.8)


def test_false_alarm_and_collar() -> None:
    ref = [(0.0, 5.0, "A")]
    approx(der(ref, [(0.0, 5.0, "A"), (7.0, 9.0, "B")]), 0.4, 0, 2, 0, 5)
    late = [(0.0, 5.4, "x"), (5.4, 10.0, "y")]  # the change is found 0.4 s late
    approx(der(TWO, late), 0.04, 0, 0, 0.4, 10)
    approx(der(TWO, late, collar=1.0), 0, 0, 0, 0, 8)  # 0.5 s each side of 0, 5 and 10 not scored


def test_overlap_counts_once_per_active_speaker() -> None:
    """A speaks 0-10 and B joins at 5: 15 s of reference speech."""
    ref = [(0.0, 10.0, "A"), (5.0, 10.0, "B")]
    approx(der(ref, [(0.0, 10.0, "x"), (5.0, 10.0, "y")]), 0, 0, 0, 0, 15)
    approx(der(ref, [(0.0, 10.0, "x")]), 1 / 3, 5, 0, 0, 15)  # the second voice is missed
    approx(der(ref, [(0.0, 5.0, "x"), (5.0, 10.0, "y")]), 1 / 3, 5, 0, 0, 15)  # y is B, A missed
    # one label at a time during the overlap is right: its speaker is one of the two active
    assert attribution_accuracy(ref, [(0.0, 5.0, "A"), (5.0, 10.0, "B")]) == 1.0
    assert attribution_accuracy(ref, [(0.0, 4.0, "A"), (4.0, 10.0, "C")]) == pytest.approx(0.4)


def test_accuracy_counts_only_labelled_rows_over_reference_speech() -> None:
    ref = [(0.0, 5.0, "A")]
    assert attribution_accuracy(ref, [(0.0, 5.0, "A"), (6.0, 8.0, "B")]) == 1.0  # B in silence: not counted
    assert attribution_accuracy(ref, [(0.0, 2.0, "A"), (2.0, 5.0, None)]) == 1.0  # None: not counted
    assert math.isnan(attribution_accuracy(ref, [(6.0, 8.0, "A")]))
    # more labels than speakers: the unmapped one is always wrong
    assert mapped_accuracy([(0.0, 10.0, "A")], [(0.0, 6.0, "u1"), (6.0, 10.0, "u2")]) == pytest.approx(0.6)


def test_overlap_scores_in_time() -> None:
    """Overlap 4-8 (4 s); flagged 3-6 and 7-9 (5 s), 3 s of it inside the overlap."""
    ref = [(0.0, 10.0, "A"), (4.0, 8.0, "B")]
    flagged = [(3.0, 6.0, True), (6.0, 7.0, False), (7.0, 9.0, True)]
    assert overlap_scores(ref, flagged) == pytest.approx((0.6, 0.75))
    precision, recall = overlap_scores(TWO, [])
    assert math.isnan(precision) and math.isnan(recall)


def test_rttm_round_trip(tmp_path: Path) -> None:
    shipped = read_rttm(RTTM)
    assert sorted(shipped) == ["tst00", "tst01"] and len(shipped["tst00"]) == 22
    assert shipped["tst00"][1] == Turn("MEE073", 0.944, 7.068, "")
    write_rttm(tmp_path / "copy.rttm", shipped)
    assert read_rttm(tmp_path / "copy.rttm") == shipped
    assert rows(shipped["tst01"])[0] == (4.39, 4.74, "FEO072")


def random_rows(rng: np.random.Generator, labels: str, n: int) -> list[tuple[int, int, str]]:
    """``n`` rows on a 0.1 s grid (in ticks) over 10 s, overlapping freely."""
    out = []
    for _ in range(n):
        start = int(rng.integers(0, 95))
        out.append((start, start + int(rng.integers(1, 30)), str(rng.choice(list(labels)))))
    return out


def brute_force(ref: list[tuple[int, int, str]], hyp: list[tuple[int, int, str]]) -> tuple[float, ...]:
    """(missed, false alarm, confusion, total, attribution accuracy) tick by tick, the mapping
    chosen by trying every one."""
    ticks = range(0, 130)
    r_sets = [{s for a, b, s in ref if a <= t < b} for t in ticks]
    h_sets = [{s for a, b, s in hyp if a <= t < b} for t in ticks]
    refs, hyps = sorted({s for *_, s in ref}), sorted({s for *_, s in hyp})
    best = 0
    for image in itertools.permutations([*refs, *[None] * len(hyps)], len(hyps)):
        mapping = dict(zip(hyps, image, strict=True))
        best = max(
            best, sum(len({mapping[h] for h in hs} & rs) for rs, hs in zip(r_sets, h_sets, strict=True))
        )
    missed = sum(max(0, len(r) - len(h)) for r, h in zip(r_sets, h_sets, strict=True))
    fa = sum(max(0, len(h) - len(r)) for r, h in zip(r_sets, h_sets, strict=True))
    confusion = sum(min(len(r), len(h)) for r, h in zip(r_sets, h_sets, strict=True)) - best
    covered = sum(len(h) for r, h in zip(r_sets, h_sets, strict=True) if r)
    right = sum(len(h & r) for r, h in zip(r_sets, h_sets, strict=True) if r)
    accuracy = right / covered if covered else math.nan
    return missed / 10, fa / 10, confusion / 10, sum(map(len, r_sets)) / 10, accuracy


@pytest.mark.parametrize("seed", range(12))
def test_matches_a_brute_force_scorer(seed: int) -> None:
    """pyannote's DER (our wrapper's row conversion) and our accuracy agree with counting ticks."""
    rng = np.random.default_rng(seed)
    ref_ticks, hyp_ticks = random_rows(rng, "ABC", 6), random_rows(rng, "ABD", 6)
    ref: list[Row] = [(a / 10, b / 10, s) for a, b, s in ref_ticks]
    hyp: list[Row] = [(a / 10, b / 10, s) for a, b, s in hyp_ticks]
    missed, fa, confusion, total, accuracy = brute_force(ref_ticks, hyp_ticks)
    result = der(ref, hyp)
    assert (result.missed, result.false_alarm, result.confusion, result.total) == pytest.approx(
        (missed, fa, confusion, total), abs=1e-6
    )
    assert result.der == pytest.approx((missed + fa + confusion) / total)
    assert attribution_accuracy(ref, hyp) == pytest.approx(accuracy, nan_ok=True)


def test_the_meeting_has_little_single_speaker_time() -> None:
    """Why the two-voice episodes are short: four stretches of 1.5 s or more in the 60 s."""
    stretches = single_speaker_stretches(read_rttm(RTTM))
    long = [(s.file, s.start, s.end, s.speaker) for s in stretches if s.duration >= 1.5]
    assert long == [
        ("tst00", 1.901, 3.492, "MEE073"),
        ("tst00", 15.625, 19.006, "FEO072"),
        ("tst00", 26.208, 27.792, "MEE073"),
        ("tst01", 24.159, 28.547, "FEO070"),
    ]


def test_the_two_voices_episode_alternates_two_people() -> None:
    truth = read_rttm(TWO_VOICES_RTTM)
    episodes = two_voices_episodes()
    assert [e.id for e in episodes] == sorted(truth) == ["two_voices"]
    for episode in episodes:
        turns = truth[episode.id]
        assert {t.speaker for t in turns} == {"FEO072", "MEE073"}
        assert sum(a.speaker != b.speaker for a, b in itertools.pairwise(turns)) >= 3
        assert all(b.start - a.end == pytest.approx(0.3) for a, b in itertools.pairwise(turns))
        assert turns[-1].end == pytest.approx(episode.duration, abs=0.01)
        assert overlap_scores(rows(turns), [(0.0, episode.duration, True)])[0] == 0.0
