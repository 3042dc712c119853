"""Pure vector logic: cluster speaker embeddings, and give anonymous voices their channel labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ytingest.items import AnonymousVoice
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


def constrained_cluster(
    vectors: Vectors, groups: npt.NDArray[np.int64], max_distance: float
) -> npt.NDArray[np.int64]:
    """``cluster`` (average linkage, cosine) where two vectors of one group never share a cluster:
    the local speakers of one segmentation chunk are different people. Labels 0..k-1 in order of
    first use. O(n²) memory, n merges of O(n²) numpy work: a 300 s window has ~10³ vectors."""
    n = len(vectors)
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    u = unit(vectors).astype(np.float64)
    dist = 1.0 - u @ u.T
    blocked = groups[:, None] == groups[None, :]  # cannot-link (and the diagonal)
    dist[blocked] = np.inf
    size = np.ones(n)
    alive = np.ones(n, dtype=bool)
    owner = np.arange(n)
    while True:
        flat = int(np.argmin(dist))
        a, b = divmod(flat, n)
        if not np.isfinite(dist[a, b]) or dist[a, b] > max_distance:
            break
        merged = (size[a] * dist[a] + size[b] * dist[b]) / (size[a] + size[b])  # Lance-Williams
        merged[~np.isfinite(dist[a]) | ~np.isfinite(dist[b])] = np.inf  # a cannot-link is inherited
        dist[a], dist[:, a] = merged, merged
        dist[a, a] = np.inf
        dist[b], dist[:, b] = np.inf, np.inf
        size[a] += size[b]
        alive[b] = False
        owner[owner == b] = a
    first_use: dict[int, int] = {}
    return np.array([first_use.setdefault(int(c), len(first_use)) for c in owner], dtype=np.int64)


def centroids(vectors: Vectors, labels: npt.NDArray[np.int64], weights: Sequence[float]) -> Vectors:
    """Weighted mean direction of each cluster, shape (k, dim)."""
    w = np.asarray(weights, dtype=np.float32)[:, None]
    k = int(labels.max()) + 1 if len(labels) else 0
    out = np.zeros((k, vectors.shape[1]), dtype=np.float32)
    np.add.at(out, labels, unit(vectors) * w)
    return unit(out)


def name_voices(
    known: Sequence[Unknown], voices: Sequence[AnonymousVoice], threshold: float, next_number: int
) -> tuple[dict[str, str], list[Unknown]]:
    """Give each anonymous voice of a video its channel label: the closest ``known`` voice when the
    cosine is ≥ ``threshold`` (its running mean then moves towards the new voice, weighted by
    seconds of speech), else a new ``unknown-N`` counting up from ``next_number``. Voices are
    taken in order, so two windows of one video that hold the same new voice get one label.

    Two voices of one window (keys ``?<window>.<n>``) were told apart by clustering, so they never
    get the same label: the second takes its next best voice above the threshold, or a new one.

    Returns key → label, and the voices to save (changed or new), each once."""
    items = list(known)
    changed: dict[str, Unknown] = {}
    labels: dict[str, str] = {}
    taken: dict[str, set[str]] = {}  # window -> labels its voices already have
    for voice in voices:
        v = unit(np.asarray(voice.vector, dtype=np.float32)[None, :])[0]
        window_taken = taken.setdefault(voice.key.split(".", 1)[0], set())
        scores = [-2.0 if u.label in window_taken else float(unit(u.vector[None, :])[0] @ v) for u in items]
        if scores and max(scores) >= threshold:
            i = int(np.argmax(scores))
            old = items[i]
            merged = unit((old.vector * old.weight + v * voice.weight)[None, :])[0]
            items[i] = Unknown(old.label, merged, old.weight + voice.weight)
        else:
            i = len(items)
            items.append(Unknown(f"unknown-{next_number}", v, voice.weight))
            next_number += 1
        changed[items[i].label] = items[i]
        labels[voice.key] = items[i].label
        window_taken.add(items[i].label)
    return labels, list(changed.values())
