"""``SegmentationTagger`` (SPEAKER_DIARIZATION=segmentation): who spoke each part of one window,
from pyannote's segmentation model and the speaker encoder. Executor only.

1. segmentation-3.0 over 10 s chunks every ``step_s`` (1 s) of the window's audio: up to 3 local
   speakers per chunk, frame by frame, overlap included (``models/segmentation.py``);
2. in one chunk of every EMBED_EVERY, each local speaker with enough speech is embedded by the
   speaker encoder from its frames where no one else speaks (all its frames when too few are
   clean; at most MAX_EMBED_S of them); the other chunks' local speakers are linked to voices
   afterwards by the frames they share with the embedded ones (``linked_frames``): the encoder
   was 3/4 of the cost at every chunk (bench/speakers.py);
3. enrolled voices first (cosine ≥ SPEAKER_THRESHOLD, SPEAKER_MARGIN over the next), at most one
   local speaker of a chunk per voice; the rest are clustered (average linkage, cosine,
   SPEAKER_CLUSTER_DISTANCE), never merging two local speakers of one chunk; a cluster near a
   voiceprint takes its name, the others are anonymous voices ``?<window>.<n>``;
4. frame labels: each frame's voices are the ones the chunks covering it give it, as many as
   the chunks' mean count of speakers there (two or more: overlapped speech);
5. each word takes the voice with most frames under it, and is overlapped when most of its
   frames are; a segment is cut where that (voice, overlap) changes (``turns.split_by_vote``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from ytingest.errors import TranscribeError
from ytingest.items import AnonymousVoice, Segment, Word
from ytingest.models.segmentation import FRAME_S, FRAME_STEP, RECEPTIVE, Segmentation, Segmenter
from ytingest.ports import SpeakerEncoder, Tagged
from ytingest.speakers.clustering import constrained_cluster, unit
from ytingest.speakers.tagger import VoiceTagger
from ytingest.speakers.turns import split_by_vote
from ytingest.speakers.voices import Voiceprint

Vectors = npt.NDArray[np.float32]
MIN_ACTIVE_S = 0.4  # a local speaker with less speech in its chunk is not embedded
MIN_CLEAN_S = 1.0  # fewer non-overlapped seconds than this: embed from all its frames
MAX_EMBED_S = 3.0  # at most this much of a local speaker's speech is embedded (cost; middle kept)
MIN_VOICE_S = 1.5  # an anonymous voice with less speech joins a near voice of the window
EMBED_EVERY = 3  # chunks: one in this many is embedded, the others are linked by shared activity
OVERLAP_SHARE = 0.5  # a word is overlapped when this share of its frames has 2+ voices


@dataclass(frozen=True, slots=True)
class FrameLabels:
    """Per frame of the window (grid FRAME_STEP): each voice's share of the chunks covering it
    (``score``: frames × voices) and whether two or more voices speak (``overlap``)."""

    score: npt.NDArray[np.float32]
    overlap: npt.NDArray[np.bool_]

    def rows(self) -> list[tuple[float, float, str]]:
        """(start, end, voice number) of each run of frames where a voice is heard, and
        (start, end, "overlap") of each run of overlapped frames; seconds, frame centres."""
        out: list[tuple[float, float, str]] = []
        tracks = [(str(v), self.score[:, v] > 0) for v in range(self.score.shape[1])]
        for name, on in [*tracks, ("overlap", self.overlap)]:
            edges = np.flatnonzero(np.diff(np.concatenate(([0], on.astype(np.int8), [0]))))
            half = RECEPTIVE / 2 / 16_000
            runs = zip(edges[::2], edges[1::2], strict=True)
            out += [(a * FRAME_S + half, b * FRAME_S + half, name) for a, b in runs]
        return out

    def span(self, start: float, end: float) -> slice:
        a = max(0, min(len(self.overlap) - 1, int((start * 16_000 - RECEPTIVE / 2) / FRAME_STEP)))
        b = max(a + 1, int(np.ceil((end * 16_000 - RECEPTIVE / 2) / FRAME_STEP)))
        return slice(a, min(b, len(self.overlap)))

    def vote(self, start: float, end: float) -> tuple[int, bool] | None:
        """The voice with most frame weight in [start, end) and whether most of it is overlapped;
        the nearest labelled frame's voice where no one is heard; None if no frame has a voice."""
        sl = self.span(start, end)
        weight = self.score[sl].sum(axis=0)
        if weight.size and weight.max() > 0:
            return int(weight.argmax()), bool(self.overlap[sl].mean() >= OVERLAP_SHARE)
        voiced = np.flatnonzero(self.score.max(axis=1) > 0) if self.score.size else np.zeros(0, int)
        if not len(voiced):
            return None
        near = int(voiced[np.argmin(np.abs(voiced - (sl.start + sl.stop) / 2))])
        return int(self.score[near].argmax()), False


class SegmentationTagger(VoiceTagger):
    """A ``SpeakerTagger`` over the segmentation model, a speaker encoder and the voiceprints (its
    settings, voiceprints and error handling are ``VoiceTagger``'s)."""

    def __init__(
        self,
        segmenter: Segmenter,
        encoder: SpeakerEncoder,
        voiceprints: Sequence[Voiceprint],
        *,
        threshold: float,
        margin: float,
        cluster_distance: float,
        split: bool = True,
        embed_every: int = EMBED_EVERY,
    ) -> None:
        super().__init__(
            encoder,
            voiceprints,
            threshold=threshold,
            margin=margin,
            cluster_distance=cluster_distance,
            split=split,
        )
        self.segmenter = segmenter
        self.embed_every = embed_every

    def tag(
        self,
        audio: npt.NDArray[np.float32],
        sample_rate: int,
        segments: tuple[Segment, ...],
        *,
        window: int = 0,
    ) -> Tagged:
        """The segments with speakers and overlap set (split at turns), and the anonymous voices."""
        if sample_rate != 16_000:
            raise TranscribeError(f"speaker identification needs 16 kHz audio, not {sample_rate} Hz")
        return super().tag(np.asarray(audio, dtype=np.float32), sample_rate, segments, window=window)

    def _tag(
        self, audio: npt.NDArray[np.float32], sr: int, segments: tuple[Segment, ...], window: int
    ) -> Tagged:
        if not segments or not len(audio):
            return Tagged(segments)
        seg = self.segmenter.segment(audio)
        pairs, vecs = self.embed_pairs(audio, seg)
        if not len(pairs):
            return Tagged(segments)
        labels, refs = self.labels(vecs, pairs[:, 0])
        frames = linked_frames(seg, pairs, labels, len(refs))
        names = self.names + [f"?{window}.{k}" for k in range(len(refs) - len(self.names))]
        # a piece's own vector: its voice's pair embeddings whose chunks overlap it, by overlap
        chunk_span = np.stack([seg.starts, seg.starts + 160_000], axis=1)[pairs[:, 0]] / 16_000
        out: list[Segment] = []
        seconds = frames.score.sum(axis=0) * FRAME_S
        for s in segments:
            for piece in split_by_vote(s, _voter(frames), split=self.split):
                p, label = piece.segment, piece.label
                voice, overlapped = label // 2, bool(label % 2)
                mine = labels == voice
                shared = (
                    np.clip(
                        np.minimum(chunk_span[:, 1], p.end) - np.maximum(chunk_span[:, 0], p.start), 0, None
                    )
                    * mine
                )
                own = unit((shared @ vecs)[None, :])[0] if shared.sum() > 0 else refs[voice]
                out.append(
                    replace(
                        p,
                        idx=len(out),
                        speaker=names[voice],
                        speaker_score=round(float(own @ refs[voice]), 4),
                        overlap=overlapped,
                    )
                )
        used = {names.index(x.speaker) for x in out if x.speaker is not None}
        voices = tuple(
            AnonymousVoice(names[k], refs[k], round(float(seconds[k]), 3))
            for k in sorted(used)
            if k >= len(self.names)
        )
        return Tagged(tuple(out), voices)

    def diarize(self, audio: npt.NDArray[np.float32]) -> FrameLabels:
        """Frame-level voices of ``audio`` alone, without the ASR's words (benches and tests)."""
        seg = self.segmenter.segment(np.asarray(audio, dtype=np.float32))
        pairs, vecs = self.embed_pairs(audio, seg)
        labels, refs = self.labels(vecs, pairs[:, 0])
        return linked_frames(seg, pairs, labels, len(refs))

    def embed_pairs(
        self, audio: npt.NDArray[np.float32], seg: Segmentation
    ) -> tuple[npt.NDArray[np.int64], Vectors]:
        """(chunk, local speaker) pairs with at least MIN_ACTIVE_S of speech, and their embeddings:
        of the samples under their clean frames (only that speaker active), or under all their
        frames when fewer than MIN_CLEAN_S are clean; at most MAX_EMBED_S from the middle."""
        act = seg.activity
        clean = act & (act.sum(axis=2, keepdims=True) == 1)
        embedded = embedded_chunks(len(seg.starts), self.embed_every)
        pairs, clips = [], []
        for c, k in zip(*np.nonzero(act.sum(axis=1) * FRAME_S >= MIN_ACTIVE_S), strict=True):
            if not embedded[c]:
                continue
            mask = clean[c, :, k] if clean[c, :, k].sum() * FRAME_S >= MIN_CLEAN_S else act[c, :, k]
            idx = np.flatnonzero(mask)
            cap = int(MAX_EMBED_S / FRAME_S)
            if len(idx) > cap:
                idx = idx[(len(idx) - cap) // 2 :][:cap]
            starts = seg.starts[c] + idx * FRAME_STEP + (RECEPTIVE - FRAME_STEP) // 2
            samples = (starts[:, None] + np.arange(FRAME_STEP)[None, :]).reshape(-1)
            samples = samples[samples < len(audio)]
            if len(samples) < MIN_ACTIVE_S * 16_000 / 2:
                continue
            pairs.append((c, k))
            clips.append(audio[samples])
        if not pairs:
            return np.zeros((0, 2), dtype=np.int64), np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.asarray(pairs, dtype=np.int64), unit(self.encoder.embed(clips))

    def labels(self, vecs: Vectors, chunks: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], Vectors]:
        """Each pair's voice (0..E-1 enrolled, E.. anonymous) and every voice's reference vector.
        Two pairs of one chunk never get the same voice."""
        enrolled = len(self.names)
        labels = np.full(len(vecs), -1, dtype=np.int64)
        if enrolled:
            order, best, second = self._ranked_prints(vecs)
            for i in np.argsort(-best):  # best claims first; one pair per chunk and voice
                voice = int(order[i, 0])
                if best[i] >= self.threshold and best[i] - second[i] >= self.margin:
                    if not np.any((chunks == chunks[i]) & (labels == voice)):
                        labels[i] = voice
        refs = list(self._prints)
        free = np.flatnonzero(labels < 0)
        if len(free):
            groups = constrained_cluster(vecs[free], chunks[free], self.cluster_distance)
            for c in range(int(groups.max()) + 1):
                members = free[groups == c]
                cent = unit(vecs[members].mean(axis=0, keepdims=True))[0]
                taken = set(labels[np.isin(chunks, chunks[members])].tolist())
                near = cent @ self._prints.T if enrolled else np.zeros(0)
                order_e = np.argsort(-near)
                gap = near[order_e[0]] - near[order_e[1]] if enrolled > 1 else 1.0
                if enrolled and near[order_e[0]] >= self.threshold and gap >= self.margin:
                    if int(order_e[0]) not in taken:
                        labels[members] = int(order_e[0])
                        continue
                labels[members] = len(refs)
                refs.append(cent)
            self._join_short_voices(vecs, labels, refs, chunks)
        return labels, unit(np.stack(refs)) if refs else np.zeros((0, vecs.shape[1]), dtype=np.float32)

    def _join_short_voices(
        self, vecs: Vectors, labels: npt.NDArray[np.int64], refs: list[Vectors], chunks: npt.NDArray[np.int64]
    ) -> None:
        """An anonymous voice heard in fewer chunks than MIN_VOICE_S seconds' worth joins the
        nearest bigger anonymous voice within 1.5 × SPEAKER_CLUSTER_DISTANCE that shares no chunk
        with it (never an enrolled voice). In place; ``refs`` stay (unused ones are not named)."""
        anonymous = range(len(self.names), len(refs))
        size = {k: int(np.sum(labels == k)) for k in anonymous}
        step_s = max(self.segmenter.step * self.embed_every / 16_000, 1e-6)  # between embedded chunks
        for k in sorted(anonymous, key=lambda x: size[x]):
            if not 0 < size[k] * step_s < MIN_VOICE_S:
                continue
            mine = set(chunks[labels == k].tolist())
            best, best_sim = -1, 1 - 1.5 * self.cluster_distance
            for j in anonymous:
                if j == k or size[j] * step_s < MIN_VOICE_S or mine & set(chunks[labels == j].tolist()):
                    continue
                sim = float(unit(refs[k][None, :])[0] @ unit(refs[j][None, :])[0])
                if sim >= best_sim:
                    best, best_sim = j, sim
            if best >= 0:
                labels[labels == k] = best
                size[best] += size[k]
                size[k] = 0


def embedded_chunks(chunks: int, every: int) -> npt.NDArray[np.bool_]:
    """Which chunks are embedded: one in ``every``, and the last (it ends with the audio)."""
    out: npt.NDArray[np.bool_] = np.arange(chunks) % max(1, every) == 0
    out[-1:] = True
    return out


def linked_frames(
    seg: Segmentation, pairs: npt.NDArray[np.int64], labels: npt.NDArray[np.int64], voices: int
) -> FrameLabels:
    """``frame_labels`` over every chunk: the local speakers of a chunk that was not embedded (or
    too short to embed) take the voices whose frames they share most with the embedded ones
    (one-to-one per chunk, and only where they share frames); then all chunks vote."""
    first = frame_labels(seg, pairs, labels, voices)
    index = seg.frame_index()
    inside = index < seg.frames
    done = {(c, k) for c, k in pairs.tolist()}
    extra_pairs, extra_labels = [], []
    for c in range(len(seg.starts)):
        act = seg.activity[c][inside[c]].astype(np.float32)
        local = [k for k in range(act.shape[1]) if (c, k) not in done and act[:, k].any()]
        if not local:
            continue
        taken = set(labels[pairs[:, 0] == c].tolist()) if len(pairs) else set()
        shared = np.stack([act[:, k] @ first.score[index[c][inside[c]]] for k in local])
        shared[:, sorted(taken)] = 0.0
        rows, cols = linear_sum_assignment(shared, maximize=True)
        for r, v in zip(rows.tolist(), cols.tolist(), strict=True):
            if shared[r, v] > 0:
                extra_pairs.append((c, local[r]))
                extra_labels.append(v)
    if not extra_pairs:
        return first
    every = np.concatenate([pairs, np.asarray(extra_pairs, dtype=np.int64)])
    their = np.concatenate([labels, np.asarray(extra_labels, dtype=np.int64)])
    return frame_labels(seg, every, their, voices)


def frame_labels(
    seg: Segmentation, pairs: npt.NDArray[np.int64], labels: npt.NDArray[np.int64], voices: int
) -> FrameLabels:
    """Frame-level voices of the window: the chunks' local activity mapped to their pairs' voices,
    averaged over the chunks covering each frame; each frame keeps its top-N voices, N the mean
    count of active local speakers there (rounded)."""
    index = seg.frame_index()
    total = seg.frames
    cover = np.zeros(total, dtype=np.float32)
    count = np.zeros(total, dtype=np.float32)
    score = np.zeros((total, max(voices, 1)), dtype=np.float32)
    inside = index < total
    for c in range(len(seg.starts)):
        g = index[c][inside[c]]
        act = seg.activity[c][inside[c]]
        np.add.at(cover, g, 1.0)
        np.add.at(count, g, act.sum(axis=1))
    for (c, k), voice in zip(pairs.tolist(), labels.tolist(), strict=True):
        g = index[c][inside[c]]
        np.add.at(score[:, voice], g, seg.activity[c][inside[c]][:, k].astype(np.float32))
    cover = np.maximum(cover, 1.0)
    score /= cover[:, None]
    n = np.rint(count / cover).astype(np.int64)
    ranks = np.argsort(np.argsort(-score, axis=1), axis=1)  # 0: the frame's strongest voice
    keep = (ranks < n[:, None]) & (score > 0)
    heard = np.where(keep, score, 0.0).astype(np.float32)
    return FrameLabels(heard, keep.sum(axis=1) >= 2)


def _voter(frames: FrameLabels) -> Callable[[Segment | Word], int | None]:
    """Voter for ``split_by_vote``: a stretch's label is voice × 2 + overlapped."""

    def vote(span: Segment | Word) -> int | None:
        got = frames.vote(span.start, span.end)
        return None if got is None else got[0] * 2 + int(got[1])

    return vote
