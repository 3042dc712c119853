"""Pure vector logic: cluster one video's speaker embeddings, match clusters to known voices."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ytingest.items import Unknown as Unknown  # defined with the other items: db returns it

Vectors = npt.NDArray[np.float32]


def unit(x: Vectors) -> Vectors:
    """Rows scaled to length 1 (a zero row stays zero)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: Vectors = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def cluster(vectors: Vectors, max_distance: float) -> npt.NDArray[np.int64]:
    """Agglomerative clustering, average linkage on cosine distance; the number of speakers is
    whatever stays apart by more than ``max_distance``. Labels are 0..k-1 in order of first use."""
    n = len(vectors)
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    from sklearn.cluster import AgglomerativeClustering

    raw = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=max_distance
    ).fit_predict(unit(vectors))
    first_use: dict[int, int] = {}
    return np.array([first_use.setdefault(int(c), len(first_use)) for c in raw], dtype=np.int64)


def centroids(vectors: Vectors, labels: npt.NDArray[np.int64], weights: Sequence[float]) -> Vectors:
    """Weighted mean direction of each cluster, shape (k, dim)."""
    w = np.asarray(weights, dtype=np.float32)[:, None]
    k = int(labels.max()) + 1 if len(labels) else 0
    out = np.zeros((k, vectors.shape[1]), dtype=np.float32)
    np.add.at(out, labels, unit(vectors) * w)
    return unit(out)


@dataclass(frozen=True, slots=True)
class Match:
    """A cluster's best enrolled voice, or None when no voice is similar enough."""

    name: str | None
    score: float


def match(cents: Vectors, prints: Vectors, names: Sequence[str], threshold: float) -> list[Match]:
    """Each cluster centroid to its most similar voiceprint, if cosine ≥ ``threshold``.

    Two clusters may get the same name (one speaker split in two is common); an
    unmatched cluster stays anonymous.
    """
    if len(names) == 0:
        return [Match(None, 0.0) for _ in range(len(cents))]
    sims = unit(cents) @ unit(prints).T
    best = sims.argmax(axis=1)
    return [
        Match(names[b] if sims[i, b] >= threshold else None, float(sims[i, b])) for i, b in enumerate(best)
    ]


class UnknownSpeakers:
    """Anonymous labels that stay the same across videos (thread-safe; ASR workers share it)."""

    def __init__(self, known: Sequence[Unknown], threshold: float, next_number: int = 1) -> None:
        self._items = list(known)
        self._threshold = threshold
        numbers = [int(u.label.rsplit("-", 1)[1]) for u in known if u.label.rsplit("-", 1)[-1].isdigit()]
        self._next = max([next_number - 1, *numbers]) + 1
        self._lock = threading.Lock()

    def assign(self, vector: Vectors, weight: float) -> tuple[str, float]:
        """The label of the closest known anonymous voice (cosine ≥ threshold), else a new one."""
        v = unit(vector[None, :])[0]
        with self._lock:
            scores = [float(u.vector @ v) for u in self._items]
            if scores and max(scores) >= self._threshold:
                i = int(np.argmax(scores))
                old = self._items[i]
                merged = unit((old.vector * old.weight + v * weight)[None, :])[0]
                self._items[i] = Unknown(old.label, merged, old.weight + weight)
                return old.label, scores[i]
            label = f"unknown-{self._next}"
            self._next += 1
            self._items.append(Unknown(label, v, weight))
            return label, 1.0

    def snapshot(self) -> list[Unknown]:
        with self._lock:
            return list(self._items)
