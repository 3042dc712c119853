"""Speaker ID's pure logic on synthetic vectors: clustering, matching, anonymous labels, windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ytingest.errors import ConfigError
from ytingest.items import AnonymousVoice, Unknown
from ytingest.models.ge2e import mel_filterbank
from ytingest.speakers.clustering import cluster, name_voices, unit
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


def test_name_voices_reuses_a_channels_voice_and_numbers_new_ones_on() -> None:
    """A voice close to a kept one takes its label (the running mean moves towards it, weighted by
    seconds, and the weights add up); a far voice gets ``next_number``, then the next."""
    centres, _, _ = voices(3, 1)
    near = unit(centres[0] + 0.05 * RNG.standard_normal(centres.shape[1], dtype=np.float32))
    known = [Unknown("unknown-2", centres[0], 3.0)]
    heard = [AnonymousVoice("?0.0", near, 1.0), AnonymousVoice("?0.1", centres[1], 2.0)]
    heard.append(AnonymousVoice("?1.0", centres[2], 2.0))
    labels, saved = name_voices(known, heard, 0.8, 7)
    assert labels == {"?0.0": "unknown-2", "?0.1": "unknown-7", "?1.0": "unknown-8"}
    by_label = {u.label: u for u in saved}
    assert list(by_label) == ["unknown-2", "unknown-7", "unknown-8"]
    expected = unit((centres[0] * 3.0 + near * 1.0)[None, :])[0]
    assert np.allclose(by_label["unknown-2"].vector, expected, atol=1e-6)
    assert by_label["unknown-2"].weight == 4.0 and by_label["unknown-7"].weight == 2.0
    assert known[0].weight == 3.0  # the caller's voices are not changed in place


def test_name_voices_gives_one_new_voice_heard_twice_in_a_video_one_label() -> None:
    """Two windows of one video with the same new voice: one label, saved once with both weights;
    nothing kept and nothing heard is an empty answer."""
    centres, samples, _ = voices(1, 2, noise=0.02)
    heard = [AnonymousVoice("?0.0", samples[0], 1.5), AnonymousVoice("?3.1", samples[1], 2.5)]
    labels, saved = name_voices([], heard, 0.8, 1)
    assert labels == {"?0.0": "unknown-1", "?3.1": "unknown-1"}
    assert [(u.label, u.weight) for u in saved] == [("unknown-1", 4.0)]
    assert name_voices([], [], 0.8, 1) == ({}, [])


def test_name_voices_threshold_decides_same_or_new() -> None:
    """A cosine just over the threshold is the same voice; just under it, a new one."""
    a = np.array([1.0, 0.0], dtype=np.float32)
    at = np.array([0.8, 0.6], dtype=np.float32)  # cosine 0.8 to ``a``
    assert name_voices([Unknown("unknown-1", a, 1.0)], [AnonymousVoice("?0", at, 1.0)], 0.79, 2)[0] == {
        "?0": "unknown-1"
    }
    assert name_voices([Unknown("unknown-1", a, 1.0)], [AnonymousVoice("?0", at, 1.0)], 0.81, 2)[0] == {
        "?0": "unknown-2"
    }


def test_name_voices_never_gives_two_voices_of_one_window_the_same_label() -> None:
    """Clustering kept two voices of window 0 apart; both resemble the channel's unknown-1, so the
    closer one takes it and the other gets a new number. A voice of another window may share it."""
    base = unit(RNG.normal(size=(1, 16)).astype(np.float32))[0]
    near = [unit((base + 0.1 * RNG.normal(size=16)).astype(np.float32)[None, :])[0] for _ in range(3)]
    known = [Unknown("unknown-1", base, 5.0)]
    voices = [
        AnonymousVoice("?0.0", near[0], 2.0),
        AnonymousVoice("?0.1", near[1], 2.0),
        AnonymousVoice("?1.0", near[2], 2.0),
    ]
    labels, saved = name_voices(known, voices, 0.8, 2)
    assert labels["?0.0"] != labels["?0.1"]
    assert {labels["?0.0"], labels["?0.1"]} == {"unknown-1", "unknown-2"}
    assert labels["?1.0"] == "unknown-1"
    assert sorted(u.label for u in saved) == ["unknown-1", "unknown-2"]
