"""``VoiceTagger``: who spoke each ASR segment of one video. Runs in the ASR executor.

1. every segment becomes one or more windows (long segments are cut into ~2 s pieces);
2. each window is embedded by the speaker encoder, on the audio already in memory;
3. the windows are clustered within the video (agglomerative, cosine, automatic count);
4. each cluster's centroid is matched to the enrolled voiceprints (``SPEAKER_THRESHOLD``);
   an unmatched cluster gets an anonymous label that is reused across videos;
5. a segment takes the label covering most of its windows' time; ``speaker_score`` is the
   cosine between the segment's own embedding and the voiceprint (or the anonymous voice).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from ytingest.errors import TranscribeError
from ytingest.items import Segment
from ytingest.models.speakers import SpeakerEncoder
from ytingest.speakers.cluster import UnknownSpeakers, centroids, cluster, match, unit
from ytingest.speakers.voices import Voiceprint

MAX_WINDOW_S = 3.0  # a longer segment is cut into windows of about 2 s
WINDOW_S = 2.0


@dataclass(frozen=True, slots=True)
class Window:
    """A piece of one segment that gets its own speaker embedding."""

    segment: int  # position in the segment tuple
    start: float
    end: float


def windows(segments: Sequence[Segment]) -> list[Window]:
    """One window per short segment; ``ceil(d / 2 s)`` equal windows for a long one."""
    out = []
    for i, s in enumerate(segments):
        d = max(s.end - s.start, 0.0)
        n = 1 if d <= MAX_WINDOW_S else math.ceil(d / WINDOW_S)
        out += [Window(i, s.start + d * k / n, s.start + d * (k + 1) / n) for k in range(n)]
    return out


class VoiceTagger:
    """A ``SpeakerTagger`` over a speaker encoder, the enrolled voiceprints and anonymous voices."""

    def __init__(
        self,
        encoder: SpeakerEncoder,
        voiceprints: Sequence[Voiceprint],
        unknowns: UnknownSpeakers,
        *,
        threshold: float,
        cluster_distance: float,
    ) -> None:
        self.encoder = encoder
        self.names = [v.name for v in voiceprints]
        self._prints = (
            np.stack([v.vector for v in voiceprints])
            if voiceprints
            else np.zeros((0, encoder.dim), dtype=np.float32)
        )
        self.unknowns = unknowns
        self.threshold = threshold
        self.cluster_distance = cluster_distance

    def tag(
        self, audio: npt.NDArray[np.float32], sample_rate: int, segments: tuple[Segment, ...]
    ) -> tuple[Segment, ...]:
        """The same segments with ``speaker`` and ``speaker_score`` set."""
        try:
            return self._tag(audio, sample_rate, segments)
        except Exception as exc:  # model and numeric errors fail this video, not the run
            raise TranscribeError(f"speaker identification failed: {type(exc).__name__}: {exc}") from None

    def _tag(
        self, audio: npt.NDArray[np.float32], sample_rate: int, segments: tuple[Segment, ...]
    ) -> tuple[Segment, ...]:
        wins = windows(segments)
        if not wins:
            return segments
        spans = [(int(w.start * sample_rate), int(w.end * sample_rate)) for w in wins]
        clips = [audio[a : max(b, a + 1)] for a, b in spans]
        vecs = self.encoder.embed(clips)
        durations = [max(w.end - w.start, 1e-3) for w in wins]
        labels = cluster(vecs, self.cluster_distance)
        cents = centroids(vecs, labels, durations)
        names: list[str] = []
        refs = np.zeros_like(cents)
        for c, m in enumerate(match(cents, self._prints, self.names, self.threshold)):
            if m.name is not None:
                names.append(m.name)
                refs[c] = self._prints[self.names.index(m.name)]
            else:
                weight = float(sum(d for d, lab in zip(durations, labels, strict=True) if lab == c))
                label, _ = self.unknowns.assign(cents[c], weight)
                names.append(label)
                refs[c] = cents[c]
        return tuple(
            self._label(i, s, wins, vecs, labels, durations, names, refs) for i, s in enumerate(segments)
        )

    @staticmethod
    def _label(
        i: int,
        seg: Segment,
        wins: list[Window],
        vecs: npt.NDArray[np.float32],
        labels: npt.NDArray[np.int64],
        durations: list[float],
        names: list[str],
        refs: npt.NDArray[np.float32],
    ) -> Segment:
        mine = [k for k, w in enumerate(wins) if w.segment == i]
        time_by_cluster: dict[int, float] = defaultdict(float)
        for k in mine:
            time_by_cluster[int(labels[k])] += durations[k]
        best = max(time_by_cluster, key=lambda c: time_by_cluster[c])
        own = unit(np.sum([vecs[k] * durations[k] for k in mine], axis=0)[None, :])[0]
        return replace(seg, speaker=names[best], speaker_score=round(float(own @ refs[best]), 4))
