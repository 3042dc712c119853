"""bench/der_frames.py: the oracle-labelled frame DER (what the segmentation's own speaker count
and tracks leave, whatever the clustering) and the enrolled-attribution split, on scripted
segmentations where the answer is known."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from bench.der_frames import enrolled_split, oracle_frames
from ytingest.models.segmentation import FRAME_STEP, FRAMES, RECEPTIVE, Segmentation, chunk_starts

RATE = 16_000
Script = Sequence[tuple[float, float, str]]


def scripted(script: Script, seconds: float) -> Segmentation:
    """A segmentation that hears exactly ``script`` (at most 3 voices a chunk, in local slots
    taken in order of first appearance, so slots mean nothing across chunks)."""
    starts = chunk_starts(int(seconds * RATE), RATE)
    act = np.zeros((len(starts), FRAMES, 3), dtype=bool)
    centres = (np.arange(FRAMES) * FRAME_STEP + RECEPTIVE / 2) / RATE
    for c, s in enumerate(starts):
        t = s / RATE + centres
        slots = list(dict.fromkeys(w for a, b, w in sorted(script) if a < t[-1] and b > t[0]))[:3]
        for a, b, w in script:
            if w in slots:
                act[c, :, slots.index(w)] |= (t >= a) & (t < b)
    return Segmentation(starts, act, int(seconds * RATE))


# A and B take turns with 2 s of overlap; C answers after a pause
TALK = [(0.0, 12.0, "A"), (10.0, 22.0, "B"), (24.0, 30.0, "C")]


def test_a_segmentation_that_hears_the_reference_scores_zero_with_oracle_labels() -> None:
    got = oracle_frames(scripted(TALK, 30.0), TALK)
    assert got["der"] == pytest.approx(0.0, abs=0.01)
    assert got["counted_share_of_reference"] == pytest.approx(1.0, abs=0.01)
    assert got["reference_beyond_two_at_once"] == 0.0


def test_a_voice_the_segmentation_does_not_count_is_missed_however_good_the_labels() -> None:
    """D talks over A for 4 s; the model hears only A there: 4 s of the 34 s are missed."""
    reference = [*TALK, (2.0, 6.0, "D")]
    got = oracle_frames(scripted(TALK, 30.0), reference)
    assert got["missed"] == pytest.approx(4 / 34, abs=0.01)
    assert got["confusion"] == pytest.approx(0.0, abs=0.01)
    assert got["counted_share_of_reference"] == pytest.approx(30 / 34, abs=0.01)


def test_three_at_once_is_counted_beyond_two() -> None:
    reference = [*TALK, (10.0, 12.0, "C")]
    assert oracle_frames(scripted(TALK, 30.0), reference)["reference_beyond_two_at_once"] == pytest.approx(
        2 / 32, abs=0.01
    )


def test_enrolled_split_scores_inside_and_outside_the_enrolment_stretches_apart() -> None:
    reference = [(0.0, 10.0, "A")]
    rows = [(0.0, 4.0, "A"), (4.0, 10.0, "B")]
    got = enrolled_split(reference, rows, [(0.0, 5.0, "solo")])
    assert got["inside_enrolment_stretches"] == {"scored_s": 5.0, "accuracy": 0.8}
    assert got["outside_enrolment_stretches"] == {"scored_s": 5.0, "accuracy": 0.0}
