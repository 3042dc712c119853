"""Diarization scores for benchmarks and tests: DER, attribution accuracy, overlap detection.

Rows are ``(start, end, speaker)`` in seconds; a hypothesis row labelled ``None`` claims no
speaker and is not scored. Overlapping reference rows of different speakers are overlapped
speech, which counts once per active speaker. ``der`` wraps pyannote.metrics (a dev
dependency: ``pip install 'ytingest[dev]'``); the other scores are computed here, on the pieces
of time between consecutive row boundaries.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ytingest.testing.dialogues import Turn

Row = tuple[float, float, str | None]


@dataclass(frozen=True, slots=True)
class DerResult:
    """Diarization error rate and its parts; the parts and ``total`` are in seconds.

    ``total`` is the scored reference speech, once per active speaker (the DER's denominator).
    """

    der: float
    missed: float
    false_alarm: float
    confusion: float
    total: float


def rows(turns: Sequence[Turn]) -> list[Row]:
    """``(start, end, speaker)`` rows of turns."""
    return [(t.start, t.end, t.speaker) for t in turns]


def der(reference: Sequence[Row], hypothesis: Sequence[Row], *, collar: float = 0.0) -> DerResult:
    """Diarization error rate under the optimal one-to-one speaker mapping (pyannote.metrics).

    Scored over the span from the first to the last row of either side; a speaker's overlapping
    rows count once (merged). ``collar``: seconds around each reference boundary left unscored,
    in total (pyannote's convention: half on each side; NIST md-eval's usual 0.25 s per side is
    ``collar=0.5``).
    """
    try:
        from pyannote.core import Segment, Timeline
        from pyannote.metrics.diarization import DiarizationErrorRate
    except ImportError as exc:  # pragma: no cover - dev dependency
        raise ImportError("der() needs pyannote.metrics: pip install 'ytingest[dev]'") from exc
    spans = [(s, e) for s, e, label in [*reference, *hypothesis] if e > s and label is not None]
    if not spans:
        return DerResult(0.0, 0.0, 0.0, 0.0, 0.0)
    uem = Timeline([Segment(min(s for s, _ in spans), max(e for _, e in spans))])
    metric = DiarizationErrorRate(collar=collar)
    # support(): a speaker's overlapping rows merged, else pyannote counts that time once per row
    d = metric(_annotation(reference).support(), _annotation(hypothesis).support(), uem=uem, detailed=True)
    return DerResult(
        float(d["diarization error rate"]),
        float(d["missed detection"]),
        float(d["false alarm"]),
        float(d["confusion"]),
        float(d["total"]),
    )


def _annotation(rows_: Sequence[Row]) -> Any:
    from pyannote.core import Annotation, Segment

    annotation = Annotation()
    for track, (start, end, label) in enumerate(rows_):
        if end > start and label is not None:
            annotation[Segment(start, end), track] = label
    return annotation


def optimal_mapping(reference: Sequence[Row], hypothesis: Sequence[Row]) -> dict[str, str]:
    """Hypothesis label → reference speaker, one-to-one, maximising the time they share."""
    together: defaultdict[tuple[str, str], float] = defaultdict(float)
    for duration, (ref, hyp) in _pieces(reference, hypothesis):
        for h in hyp:
            for r in ref:
                together[h, r] += duration
    if not together:
        return {}
    hyps = sorted({h for h, _ in together})
    refs = sorted({r for _, r in together})
    shared = np.array([[together.get((h, r), 0.0) for r in refs] for h in hyps])
    hi, ri = linear_sum_assignment(shared, maximize=True)
    return {hyps[i]: refs[j] for i, j in zip(hi, ri, strict=True) if shared[i, j] > 0}


def attribution_accuracy(reference: Sequence[Row], hypothesis: Sequence[Row]) -> float:
    """Share of the reference speech covered by labelled hypothesis rows whose label is one of the
    reference speakers active at that moment (names compared as they are: enrolled voices).

    Time counts once per distinct hypothesis label active. ``nan`` when nothing is covered.
    """
    return _accuracy(reference, hypothesis, lambda label: label)


def mapped_accuracy(reference: Sequence[Row], hypothesis: Sequence[Row]) -> float:
    """``attribution_accuracy`` after renaming hypothesis labels by ``optimal_mapping`` (anonymous
    labels); a label left unmapped is always wrong."""
    mapping = optimal_mapping(reference, hypothesis)
    return _accuracy(reference, hypothesis, mapping.get)


def overlap_scores(
    reference: Sequence[Row], flagged_rows: Sequence[tuple[float, float, bool]]
) -> tuple[float, float]:
    """(precision, recall) in time of the flagged rows against the reference's overlapped speech
    (≥ 2 speakers active). ``nan`` where a denominator is zero."""
    flags: list[Row] = [(start, end, "overlap") for start, end, flag in flagged_rows if flag]
    flagged = overlapped = hit = 0.0
    for duration, (ref, flag) in _pieces(reference, flags):
        is_overlap = len(ref) >= 2
        flagged += duration if flag else 0.0
        overlapped += duration if is_overlap else 0.0
        hit += duration if flag and is_overlap else 0.0
    return _ratio(hit, flagged), _ratio(hit, overlapped)


def _accuracy(
    reference: Sequence[Row], hypothesis: Sequence[Row], name: Callable[[str], str | None]
) -> float:
    covered = correct = 0.0
    for duration, (ref, hyp) in _pieces(reference, hypothesis):
        if ref:
            covered += duration * len(hyp)
            correct += duration * sum(1 for label in hyp if name(label) in ref)
    return _ratio(correct, covered)


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole > 0 else math.nan


def _pieces(*tracks: Sequence[Row]) -> Iterator[tuple[float, list[frozenset[str]]]]:
    """(duration, labels active in each track) for each piece of time between consecutive row
    boundaries where any row is active; rows labelled ``None`` and empty rows are left out."""
    edges = sorted(
        (time, step, k, label)
        for k, track in enumerate(tracks)
        for start, end, label in track
        if end > start and label is not None
        for time, step in ((start, 1), (end, -1))
    )
    active: list[Counter[str]] = [Counter() for _ in tracks]
    previous = edges[0][0] if edges else 0.0
    for time, step, k, label in edges:
        if time > previous and any(active):
            yield time - previous, [frozenset(c) for c in active]
        active[k][label] += step
        if active[k][label] == 0:
            del active[k][label]
        previous = time
