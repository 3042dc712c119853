"""Speaker ID's pure logic on synthetic vectors: clustering, matching, anonymous labels, windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ytingest.errors import ConfigError
from ytingest.items import Segment
from ytingest.models.ge2e import mel_filterbank
from ytingest.speakers.cluster import UnknownSpeakers, centroids, cluster, match, unit
from ytingest.speakers.tagger import windows
from ytingest.speakers.voices import scan

RNG = np.random.default_rng(7)


def voices(n: int, per: int, noise: float = 0.04, dim: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per`` noisy samples around each of ``n`` random unit directions."""
    centres = unit(RNG.normal(size=(n, dim)).astype(np.float32))
    labels = np.repeat(np.arange(n), per)
    samples = unit(centres[labels] + noise * RNG.normal(size=(n * per, dim)).astype(np.float32))
    return centres, samples, labels


def test_clustering_finds_the_number_of_speakers_by_itself() -> None:
    """Three well separated voices, shuffled, come back as exactly three pure clusters."""
    _, samples, truth = voices(3, 8)
    order = RNG.permutation(len(samples))
    labels = cluster(samples[order], max_distance=0.4)
    assert len(set(labels)) == 3
    for c in set(labels):
        assert len(set(truth[order][labels == c])) == 1


def test_one_window_is_one_cluster() -> None:
    """A video with a single window has one cluster (sklearn needs two samples)."""
    assert cluster(np.ones((1, 4), dtype=np.float32), 0.3).tolist() == [0]


def test_matching_names_close_clusters_and_leaves_strangers_anonymous() -> None:
    """A centroid near a voiceprint gets its name; one far from all voiceprints gets None."""
    centres, samples, labels = voices(3, 6)
    cents = centroids(samples, labels, [1.0] * len(samples))
    result = match(cents, centres[:2], ["ada", "bruno"], threshold=0.8)
    assert [m.name for m in result] == ["ada", "bruno", None]
    assert result[0].score > 0.9 and result[2].score < 0.8


def test_unknown_labels_are_reused_for_the_same_voice_and_new_for_another() -> None:
    """The same anonymous voice in a later video keeps its label; a new voice gets the next number."""
    centres, _, _ = voices(2, 1)
    reg = UnknownSpeakers([], threshold=0.8, next_number=4)
    assert reg.assign(centres[0], 3.0)[0] == "unknown-4"
    noisy = unit(centres[0] + 0.05 * RNG.normal(size=centres.shape[1]).astype(np.float32))
    assert reg.assign(noisy, 1.0)[0] == "unknown-4"
    assert reg.assign(centres[1], 1.0)[0] == "unknown-5"
    again = UnknownSpeakers(reg.snapshot(), threshold=0.8)
    assert again.assign(centres[1], 1.0)[0] == "unknown-5"


def test_long_segments_are_cut_into_windows_of_about_two_seconds() -> None:
    """A 2.5 s segment is one window; a 7 s segment is four equal windows covering it exactly."""
    segs = (Segment(0, 0.0, 2.5, "a"), Segment(1, 3.0, 10.0, "b"))
    w = windows(segs)
    assert [(x.segment, x.start, x.end) for x in w[:1]] == [(0, 0.0, 2.5)]
    tail = [x for x in w if x.segment == 1]
    assert len(tail) == 4 and tail[0].start == 3.0 and tail[-1].end == pytest.approx(10.0)


def test_mel_filters_are_triangles_with_unit_area_per_mel_width() -> None:
    """40 filters over 201 bins, non-negative, each peaking once, lower bands narrower than upper."""
    fb = mel_filterbank()
    assert fb.shape == (40, 201) and (fb >= 0).all()
    widths = (fb > 0).sum(axis=1)
    assert widths[0] < widths[-1]


def test_voices_layout_folder_or_file_and_nothing_else(tmp_path: Path) -> None:
    """A folder per speaker or a file named after them; notes, hidden files and links out are ignored."""
    (tmp_path / "Ada").mkdir()
    (tmp_path / "Ada" / "a.mp3").write_bytes(b"1")
    (tmp_path / "Ada" / "notes.txt").write_text("x")
    (tmp_path / "Bob.wav").write_bytes(b"2")
    (tmp_path / ".hidden.wav").write_bytes(b"3")
    (tmp_path / "README.md").write_text("x")
    outside = tmp_path.parent / "outside.wav"
    outside.write_bytes(b"4")
    (tmp_path / "Eve.wav").symlink_to(outside)
    found = {v.name: sorted(v.files) for v in scan(tmp_path)}
    assert found == {"Ada": ["Ada/a.mp3"], "Bob": ["Bob.wav"]}


def test_missing_voices_folder_is_a_config_error(tmp_path: Path) -> None:
    """--voices-dir pointing nowhere is a clear configuration error."""
    with pytest.raises(ConfigError, match="voices folder not found"):
        scan(tmp_path / "nope")
