"""Where the segmentation method's frame-level errors come from (used by ``bench/speakers.py``).

``oracle_frames``: the same segmentation and the same aggregation as ``diarize.frame_labels``
(pyannote's: per frame, the chunks' mean count of active local speakers, rounded, keeps that many
of the best-scored voices), but each local speaker of each chunk labelled with the reference
speaker it shares most frames with (one-to-one per chunk). Its missed speech is what the model's
speaker count leaves however good the clustering; its confusion, what the local tracks' own
errors leave. ``enrolled_split``: attribution accuracy inside and outside given stretches (the
ones the voiceprints were cut from), so identifying a voice in the audio it was enrolled from
is told apart from identifying it elsewhere. ``two_voice_rows``: the stored rows plus the second
voice of each overlapped row, to measure what rows carrying two speakers would score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from tests.support.diarization import Row, _pieces, der
from ytingest.models.asr import AsrResult
from ytingest.models.segmentation import FRAME_STEP, RECEPTIVE, SAMPLE_RATE, Segmentation
from ytingest.speakers.clustering import name_voices
from ytingest.speakers.diarize import SegmentationTagger, frame_labels
from ytingest.speakers.turns import speech_spans

Rows = list[tuple[float, float, str]]


def reference_frames(reference: Sequence[Row], frames: int) -> tuple[np.ndarray, list[str]]:
    """(frames, speakers) booleans: who the reference has active at each frame centre."""
    speakers = sorted({str(who) for *_, who in reference if who is not None})
    centre = (np.arange(frames) * FRAME_STEP + RECEPTIVE / 2) / SAMPLE_RATE
    active = np.zeros((frames, len(speakers)), dtype=bool)
    for start, end, who in reference:
        if who is not None:
            active[(centre >= start) & (centre < end), speakers.index(str(who))] = True
    return active, speakers


def oracle_frames(seg: Segmentation, reference: Sequence[Row], *, collar: float = 0.25) -> dict[str, Any]:
    """Frame DER (and its parts, as shares of the reference speech) with oracle labels."""
    active, speakers = reference_frames(reference, seg.frames)
    index = seg.frame_index()
    inside = index < seg.frames
    pairs, labels = [], []
    for c in range(len(seg.starts)):
        act = seg.activity[c][inside[c]].astype(np.float32)
        shared = act.T @ active[index[c][inside[c]]].astype(np.float32)  # local × reference
        for k, who in zip(*linear_sum_assignment(shared, maximize=True), strict=True):
            if act[:, k].any():
                pairs.append((c, int(k)))
                labels.append(int(who))
    if not pairs:
        return {"der": None}
    frames = frame_labels(seg, np.asarray(pairs, dtype=np.int64), np.asarray(labels), len(speakers))
    rows = [(a, b, speakers[int(v)]) for a, b, v in frames.rows() if v != "overlap"]
    d = der(reference, rows, collar=collar)
    return {
        "der": round(d.der, 3),
        "missed": round(d.missed / d.total, 3),
        "false_alarm": round(d.false_alarm / d.total, 3),
        "confusion": round(d.confusion / d.total, 3),
        # speaker-frames the model's count lets through, against the reference's
        "counted_share_of_reference": round(float((frames.score > 0).sum() / max(active.sum(), 1)), 3),
        "reference_beyond_two_at_once": round(
            float(np.maximum(active.sum(axis=1) - 2, 0).sum() / max(active.sum(), 1)), 3
        ),
    }


def enrolled_split(reference: Sequence[Row], rows: Rows, stretches: Rows) -> dict[str, Any]:
    """Attribution accuracy (names compared as they are) inside and outside ``stretches``."""
    scored = {True: 0.0, False: 0.0}
    right = {True: 0.0, False: 0.0}
    for duration, (ref, hyp, where) in _pieces(reference, rows, stretches):
        if ref:
            scored[bool(where)] += duration * len(hyp)
            right[bool(where)] += duration * sum(1 for label in hyp if label in ref)
    return {
        f"{side}_enrolment_stretches": {
            "scored_s": round(scored[key], 2),
            "accuracy": round(right[key] / scored[key], 3) if scored[key] else None,
        }
        for side, key in (("inside", True), ("outside", False))
    }


def two_voice_rows(tagger: SegmentationTagger, r: AsrResult) -> Rows:
    """Rows as stored (one voice each, where the words are, anonymous keys named as the store
    would), plus, for each row flagged ``overlap``, a row of the second voice the frames hear
    there: what the rows would score if a row could carry a second speaker. Nobody enrolled."""
    tagged = tagger.tag(r.audio, SAMPLE_RATE, r.segments)
    labels, _ = name_voices([], tagged.voices, 0.8, 1)
    frames = tagger.diarize(r.audio)
    out: Rows = []
    for s in tagged.segments:
        if s.speaker is None:
            continue
        for span in speech_spans([s]):
            out.append((span.start, span.end, labels.get(s.speaker, s.speaker)))
            if not s.overlap:
                continue
            weight = frames.score[frames.span(span.start, span.end)].sum(axis=0)
            for v in np.argsort(-weight)[:2].tolist():
                key = f"?0.{v}"
                if weight[v] > 0 and key != s.speaker:  # a voice no row leads: a label of its own
                    out.append((span.start, span.end, labels.get(key, key)))
                    break
    return out
