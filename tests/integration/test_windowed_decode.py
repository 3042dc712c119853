"""A long file decodes in windows cut at quiet points: the same samples as a whole-file decode,
in order, with memory bounded by the window instead of the file."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from ytingest.errors import TranscribeError
from ytingest.items import SAMPLE_RATE, PreparedAudio
from ytingest.models.batched_asr import decode_file, prepare_file
from ytingest.models.windows import SEARCH_S, iter_windows
from ytingest.testing.channel import SAMPLES

WINDOW_S = 60.0


def real_and_synthetic_speech() -> npt.NDArray[np.float32]:
    """The bundled recordings back to back: the real meeting clips, then every synthetic sample
    (about 5 minutes)."""
    paths = [SAMPLES / "real" / "tst00.mp3", SAMPLES / "real" / "tst01.mp3", *sorted(SAMPLES.glob("*.mp3"))]
    return np.concatenate([decode_file(p) for p in paths])


def encode_m4a(audio: npt.NDArray[np.float32], path: Path, *, faststart: bool = True) -> Path:
    """16 kHz mono AAC in .m4a, as a download gives; ``faststart``: the index before the audio."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = 32_000
        step = 10 * SAMPLE_RATE
        for i in range(0, len(audio), step):
            frame = av.AudioFrame.from_ndarray(audio[None, i : i + step], format="flt", layout="mono")
            frame.rate = SAMPLE_RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def loop_m4a(src: Path, dst: Path, times: int) -> Path:
    """``src``'s packets ``times`` over, retimed, into ``dst`` (no re-encoding: a long file, fast)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.audio[0]
        target = out.add_stream_from_template(stream)
        packets = [p for p in inp.demux(stream) if p.pts is not None and p.dts is not None]
        stamps = [(int(p.pts or 0), int(p.dts or 0)) for p in packets]
        span = stamps[-1][0] + int(packets[-1].duration or 0) - stamps[0][0]
        time_base = stream.time_base
        assert time_base is not None
        for k in range(times):
            for p, (pts, dts) in zip(packets, stamps, strict=True):
                p.time_base = time_base
                p.pts, p.dts = pts + k * span, dts + k * span
                p.stream = target
                out.mux(p)
    return dst


@pytest.fixture(scope="module")
def long_m4a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_m4a(real_and_synthetic_speech(), tmp_path_factory.mktemp("windows") / "long.m4a")


def windows(path: Path, batching: str = "off", window_s: float = WINDOW_S) -> list[PreparedAudio]:
    extractor = FeatureExtractor() if batching != "off" else None
    return list(iter_windows(path, batching=batching, extractor=extractor, window_s=window_s))


def test_windows_are_the_whole_decode_in_order_sample_for_sample(long_m4a: Path) -> None:
    """Windows come in order, end to end, the last marked, and together are decode_file's samples."""
    got = windows(long_m4a)
    whole = decode_file(long_m4a)
    assert len(got) >= 4
    assert [w.index for w in got] == list(range(len(got)))
    assert [w.last for w in got] == [False] * (len(got) - 1) + [True]
    assert got[0].offset == 0.0
    for a, b in zip(got, got[1:], strict=False):
        assert abs(b.offset - a.end) * SAMPLE_RATE < 1
    assert np.array_equal(np.concatenate([w.audio for w in got]), whole)
    assert all(WINDOW_S - SEARCH_S <= w.seconds <= WINDOW_S for w in got[:-1])
    assert SEARCH_S <= got[-1].seconds <= WINDOW_S + SEARCH_S
    assert all(w.total == got[0].total for w in got)
    assert got[0].total is not None and abs(got[0].total - len(whole) / SAMPLE_RATE) < 0.5


def test_cuts_fall_where_it_is_quiet(long_m4a: Path) -> None:
    """Around every cut (100 ms) the audio is far quieter than the file's median 100 ms frame."""
    whole = decode_file(long_m4a).astype(np.float64)
    frames = whole[: len(whole) // 1600 * 1600].reshape(-1, 1600)
    median = float(np.median(np.sqrt((frames**2).mean(axis=1))))
    for w in windows(long_m4a)[1:]:
        cut = round(w.offset * SAMPLE_RATE)
        assert float(np.sqrt((whole[cut - 800 : cut + 800] ** 2).mean())) < 0.05 * median


def test_a_short_file_is_one_window_as_before() -> None:
    """A file shorter than a window is one window at 0, the last, the same as prepare_file."""
    path = SAMPLES / "real" / "tst00.mp3"
    extractor = FeatureExtractor()
    (window,) = iter_windows(path, batching="cross", extractor=extractor, window_s=300)
    before = prepare_file(path, batching="cross", extractor=extractor)
    assert (window.offset, window.index, window.last) == (0.0, 0, True)
    assert window.total is not None and abs(window.total - 30) < 0.1
    assert np.array_equal(window.audio, before.audio)
    assert (window.clips, window.chunks) == (before.clips, before.chunks)
    assert window.features is not None and before.features is not None
    assert np.array_equal(window.features, before.features)


def test_each_window_has_its_own_speech_chunks_and_features(long_m4a: Path) -> None:
    """With batching, every window of speech has VAD chunks and features in its own time."""
    for w in windows(long_m4a, batching="cross"):
        assert w.chunks and w.features is not None
        assert w.features.shape == (len(w.chunks), 80, 3000)
        assert all(0 <= c["start"] < c["end"] <= len(w.audio) for c in w.clips)


@pytest.mark.parametrize("content", [b"<html>nope</html>", bytes(range(256)) * 64, b""])
def test_bytes_that_are_not_audio_cannot_be_decoded(tmp_path: Path, content: bytes) -> None:
    """Junk, or an empty file, is a TranscribeError before any window."""
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(content)
    with pytest.raises(TranscribeError, match="cannot decode audio"):
        windows(bad)


def test_a_file_without_samples_is_an_error(tmp_path: Path) -> None:
    """A valid file with no audio in it is a TranscribeError, as decode_file says."""
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
    with pytest.raises(TranscribeError, match="holds no samples"):
        windows(empty)


def test_a_download_cut_in_half_gives_the_windows_it_holds(tmp_path: Path, long_m4a: Path) -> None:
    """An .m4a with its index first, cut in half: windows of the first half, then the end (FFmpeg
    reads a truncated file to where it stops, no error); their samples are the full file's start."""
    data = long_m4a.read_bytes()
    half = tmp_path / "half.m4a"
    half.write_bytes(data[: len(data) // 2])
    got = windows(half)
    audio = np.concatenate([w.audio for w in got])
    assert len(got) >= 2 and got[-1].last
    assert 0.3 < len(audio) / len(decode_file(long_m4a)) < 0.7
    assert np.array_equal(audio, decode_file(long_m4a)[: len(audio)])


def test_an_m4a_cut_before_its_index_cannot_be_opened(tmp_path: Path, long_m4a: Path) -> None:
    """An .m4a with its index at the end (the muxer's default), cut in half: an error, no window."""
    late = loop_m4a(long_m4a, tmp_path / "late-index.m4a", 1)
    data = late.read_bytes()
    half = tmp_path / "half.m4a"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(TranscribeError, match="cannot decode audio"):
        windows(half)


PEAK = """
import json, sys
from pathlib import Path
import av, faster_whisper, numpy
from ytingest.models.batched_asr import decode_file
from ytingest.models.windows import iter_windows

def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))

path, how = Path(sys.argv[1]), sys.argv[2]
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # VmHWM := VmRSS: the imports' peak is not counted
if how == "whole":
    samples = len(decode_file(path))
else:
    samples = sum(len(w.audio) for w in iter_windows(path, batching="off", extractor=None, window_s=300))
print(json.dumps({"samples": samples, "before_kb": before, "peak_kb": status("VmHWM")}))
"""


def peak_memory(path: Path, how: str) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", PEAK, str(path), how], capture_output=True, check=True)
    return dict(json.loads(done.stdout))


def test_windowed_decoding_of_a_long_file_needs_a_fraction_of_the_memory(
    tmp_path: Path, long_m4a: Path
) -> None:
    """A 40-minute file: the peak memory a decode adds is under half the whole-file decode's
    (in fresh processes; each window is dropped once counted, as the decoder child does). Peak
    RSS is Linux's VmHWM: a child's ru_maxrss can start at its parent's (pytest) high-water mark."""
    long = loop_m4a(long_m4a, tmp_path / "40min.m4a", 8)
    whole, windowed = peak_memory(long, "whole"), peak_memory(long, "windows")
    assert whole["samples"] == windowed["samples"] > 35 * 60 * SAMPLE_RATE
    added_whole = whole["peak_kb"] - whole["before_kb"]
    added_windowed = windowed["peak_kb"] - windowed["before_kb"]
    print(f"peak added: whole {added_whole // 1024} MiB, windowed {added_windowed // 1024} MiB")
    assert added_windowed < 0.5 * added_whole
