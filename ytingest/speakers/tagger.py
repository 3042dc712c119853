"""``VoiceTagger``: who spoke each part of one window of a video. Runs in the ASR executor.

1. short windows (``turns.WINDOW_S``, hop ``HOP_S``) over the speech only, from the ASR's words;
2. each window is embedded by the speaker encoder, on the audio already in memory;
3. enrolled voices first: a window whose nearest voiceprint has cosine ≥ ``SPEAKER_THRESHOLD``,
   and beats the next voiceprint by ``SPEAKER_MARGIN``, is that voice's;
4. only the windows no voiceprint claimed are clustered (agglomerative, cosine, automatic count);
   a cluster whose centroid is near enough a voiceprint takes its name, a cluster of less than
   MIN_VOICE_S joins a voice already heard in the window, and the rest are anonymous voices
   (the store names them ``unknown-N`` per channel);
5. each word takes the speaker of the windows covering it, and a segment whose words change
   speaker is split at the word boundary (``turns.split_at_turns``);
6. a window that fits its own voice poorly (cosine < OVERLAP_FIT) while another voice is heard is
   overlapped speech; a piece mostly in such windows has ``overlap`` set and keeps the dominant
   speaker.
``speaker_score`` is the cosine between a piece's own embedding and its voice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from ytingest.config import Settings
from ytingest.errors import TranscribeError
from ytingest.items import AnonymousVoice, Segment
from ytingest.ports import SpanEncoder, SpeakerEncoder, Tagged
from ytingest.speakers.clustering import centroids, cluster, unit
from ytingest.speakers.turns import HOP_S, overlap, speech_spans, split_at_turns, windows
from ytingest.speakers.voices import Voiceprint

Vectors = npt.NDArray[np.float32]
MIN_VOICE_S = 1.5  # a cluster with less speech than this is not a new voice when others are heard
OVERLAP_FIT = 0.75  # a window less like its own voice than this is mixed speech (bench/speakers.py)
OVERLAP_SHARE = 0.5  # a row is overlapped when this much of its time is in mixed windows


class VoiceTagger:
    """A ``SpeakerTagger`` over a speaker encoder and the enrolled voiceprints."""

    def __init__(
        self,
        encoder: SpeakerEncoder,
        voiceprints: Sequence[Voiceprint],
        *,
        threshold: float,
        margin: float,
        cluster_distance: float,
        split: bool = True,
    ) -> None:
        self.encoder = encoder
        self.model = encoder.name
        self.names = [v.name for v in voiceprints]
        self._prints: Vectors = (
            unit(np.stack([v.vector for v in voiceprints]))
            if voiceprints
            else np.zeros((0, encoder.dim), dtype=np.float32)
        )
        self.threshold = threshold
        self.margin = margin
        self.cluster_distance = cluster_distance
        self.split = split

    @classmethod
    def from_settings(
        cls,
        encoder: SpeakerEncoder,
        voiceprints: Sequence[Voiceprint],
        s: Settings,
        *,
        split: bool | None = None,
    ) -> VoiceTagger:
        """The tagger the SPEAKER_* settings describe (``split`` overrides SPEAKER_SPLIT)."""
        return cls(
            encoder,
            voiceprints,
            threshold=s.speaker_threshold,
            margin=s.speaker_margin,
            cluster_distance=s.speaker_cluster_distance,
            split=s.speaker_split if split is None else split,
        )

    def tag(
        self,
        audio: npt.NDArray[np.float32],
        sample_rate: int,
        segments: tuple[Segment, ...],
        *,
        window: int = 0,
    ) -> Tagged:
        """The segments with speakers set (split at turns), and the anonymous voices they name."""
        try:
            return self._tag(audio, sample_rate, segments, window)
        except Exception as exc:  # model and numeric errors fail this video, not the run
            raise TranscribeError(f"speaker identification failed: {type(exc).__name__}: {exc}") from None

    def _tag(
        self, audio: npt.NDArray[np.float32], sr: int, segments: tuple[Segment, ...], window: int
    ) -> Tagged:
        wins = windows(speech_spans(segments), len(audio) / sr)
        if not wins:
            return Tagged(segments)
        spans = [(int(w.start * sr), max(int(w.end * sr), int(w.start * sr) + 1)) for w in wins]
        if isinstance(self.encoder, SpanEncoder):  # one STFT for the whole window of audio
            vecs = unit(self.encoder.embed_spans(audio, spans))
        else:
            vecs = unit(self.encoder.embed([audio[a:b] for a, b in spans]))
        labels, refs = self._labels(vecs)
        overlapped = self._overlapped(vecs, labels, refs)
        names = self.names + [f"?{window}.{k}" for k in range(len(refs) - len(self.names))]
        out: list[Segment] = []
        used: set[int] = set()
        for seg in segments:
            for piece in split_at_turns(seg, wins, labels.tolist(), split=self.split):
                p, label = piece.segment, piece.label
                weights = np.zeros(len(wins), dtype=np.float32)
                for i in wins.touching(p):
                    weights[i] = overlap(p, wins[i])
                own = unit((weights @ vecs)[None, :])[0] if weights.sum() > 0 else refs[label]
                share = float(weights @ overlapped / weights.sum()) if weights.sum() > 0 else 0.0
                score = round(float(own @ refs[label]), 4)
                out.append(
                    replace(
                        p,
                        idx=len(out),
                        speaker=names[label],
                        speaker_score=score,
                        overlap=share >= OVERLAP_SHARE,
                    )
                )
                used.add(label)
        voices = tuple(
            AnonymousVoice(names[k], refs[k], float(np.sum(labels == k)) * HOP_S)
            for k in sorted(used)
            if k >= len(self.names)
        )
        return Tagged(tuple(out), voices)

    def _labels(self, vecs: Vectors) -> tuple[npt.NDArray[np.int64], Vectors]:
        """Each window's voice: 0..E-1 the enrolled ones, E.. this window's anonymous ones; and
        every voice's reference vector (voiceprint or centroid)."""
        enrolled = len(self.names)
        labels = np.full(len(vecs), -1, dtype=np.int64)
        if enrolled:
            order, best, second = self._ranked_prints(vecs)
            claimed = (best >= self.threshold) & (best - second >= self.margin)
            labels[claimed] = order[claimed, 0]
        free = np.flatnonzero(labels < 0)
        refs = list(self._prints)
        if len(free):
            groups = cluster(vecs[free], self.cluster_distance)
            cents = centroids(vecs[free], groups, [1.0] * len(free))
            anonymous: dict[int, int] = {}
            for c, cent in enumerate(cents):
                near = np.sort(cent @ self._prints.T)[::-1] if enrolled else np.zeros(0)
                gap = near[0] - near[1] if enrolled > 1 else 1.0
                if enrolled and near[0] >= self.threshold and gap >= self.margin:
                    labels[free[groups == c]] = int(np.argmax(cent @ self._prints.T))
                else:
                    anonymous[c] = len(refs)
                    refs.append(cent)
                    labels[free[groups == c]] = anonymous[c]
            self._absorb_small(vecs, labels, refs, set(anonymous.values()))
        return labels, unit(np.stack(refs)) if refs else np.zeros((0, vecs.shape[1]), dtype=np.float32)

    def _ranked_prints(self, vecs: Vectors) -> tuple[npt.NDArray[np.int64], Vectors, Vectors]:
        """Per vector: the voiceprints' indices by cosine, nearest first; the nearest one's cosine,
        and the runner-up's (-1 with a single voiceprint). Needs at least one voiceprint."""
        sims = vecs @ self._prints.T
        order = np.argsort(-sims, axis=1)
        rows = np.arange(len(vecs))
        best = sims[rows, order[:, 0]]
        second = sims[rows, order[:, 1]] if len(self.names) > 1 else np.full(len(vecs), -1.0, np.float32)
        return order, best, second

    def _absorb_small(
        self, vecs: Vectors, labels: npt.NDArray[np.int64], refs: list[Vectors], anonymous: set[int]
    ) -> None:
        """An anonymous cluster with under MIN_VOICE_S of speech joins the nearest bigger anonymous
        voice of this window when its centroid is within 1.5 × SPEAKER_CLUSTER_DISTANCE (a cough
        is not a new person). Never an enrolled voice: a stranger's short reply must not be given
        a name that only the threshold and margin can give. In place."""
        sizes = {k: float(np.sum(labels == k)) * HOP_S for k in anonymous}
        big = [k for k, size in sizes.items() if size >= MIN_VOICE_S]
        if not big:
            return
        targets = unit(np.stack([refs[k] for k in big]))
        for k in sorted(anonymous):
            if 0 < sizes[k] < MIN_VOICE_S:
                sims = unit(refs[k][None, :])[0] @ targets.T
                if sims.max() >= 1 - 1.5 * self.cluster_distance:
                    labels[labels == k] = big[int(sims.argmax())]

    def _overlapped(
        self, vecs: Vectors, labels: npt.NDArray[np.int64], refs: Vectors
    ) -> npt.NDArray[np.float32]:
        """1.0 for a window that fits its own voice poorly (cosine < OVERLAP_FIT) while another voice
        is in play: a mixture of two voices embeds between them. A heuristic (see the README)."""
        if len(set(labels.tolist())) < 2:
            return np.zeros(len(vecs), dtype=np.float32)
        own = np.einsum("ij,ij->i", vecs, refs[labels])
        flags: npt.NDArray[np.float32] = (own < OVERLAP_FIT).astype(np.float32)
        return flags
