"""Decoding from a resume point (a seek) and decoding a file while it downloads (a growing .part):
the windows match a whole-file decode from the start, in-process, in the decoder child, in the
pool and in the thread path; a failed download ends the read with DownloadEnded, never a hang."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest

from ytingest.items import PreparedAudio, ResumePoint
from ytingest.models.asr import WhisperTranscriber
from ytingest.models.growing import DownloadEnded, GrowingFile, end_marker, mark_end, streamable
from ytingest.models.windows import GROWING_FIRST_S, SEARCH_S, iter_windows
from ytingest.stages.decode import windows_in_thread
from ytingest.stages.decode_pool import DecodePool
from ytingest.stages.decoder_process import DecoderProcess
from ytingest.testing.channel import SAMPLES
from ytingest.testing.long_episodes import default_cache_dir, long_episode

WINDOW_S = 20.0  # a one-minute file is three windows
FRAME = 400  # samples at 16 kHz: more than one AAC (1024 / 44.1 kHz) or Opus (20 ms) frame


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One minute of real speech as YouTube serves it (m4a with its index last, WebM/Opus), the
    m4a remuxed fragmented (YouTube's DASH m4a), and an mp3."""
    m4a = long_episode(1, default_cache_dir()).path
    frag = tmp_path_factory.mktemp("frag") / "frag.m4a"
    options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
    with av.open(str(m4a)) as src, av.open(str(frag), "w", format="mp4", options=options) as out:
        stream = out.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    webm = long_episode(1, default_cache_dir(), fmt="webm").path
    return {"m4a": m4a, "webm": webm, "frag": frag, "mp3": SAMPLES / "ep06-bread.mp3"}


@pytest.fixture(scope="module")
def asr() -> WhisperTranscriber:
    return WhisperTranscriber("bundled", device="cpu", batching="cross", window_s=WINDOW_S)


def windows(path: Path, **kw: object) -> list[PreparedAudio]:
    return list(iter_windows(path, batching="off", extractor=None, window_s=WINDOW_S, **kw))  # type: ignore[arg-type]


def assert_same_signal(a: np.ndarray, b: np.ndarray) -> None:
    """Equal within a frame: lengths, no shift, and the same waveform (a resampler's phase apart)."""
    assert abs(len(a) - len(b)) <= FRAME
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    probe = slice(FRAME, min(n, 16000 * 5) - FRAME)
    lags = range(-FRAME, FRAME + 1, 4)
    errors = [float(np.abs(a[probe] - np.roll(b, lag)[probe]).mean()) for lag in lags]
    assert abs(lags[int(np.argmin(errors))]) <= 4
    assert np.corrcoef(a, b)[0, 1] > 0.99


@pytest.mark.parametrize("kind", ["m4a", "webm", "frag", "mp3"])
def test_a_seek_gives_the_windows_of_a_decode_from_the_start(files: dict[str, Path], kind: str) -> None:
    """From window k's offset: windows numbered from k, at the same offsets, the same samples and
    total as the decode from the start (within a frame)."""
    whole = windows(files[kind])
    assert len(whole) >= 3
    for k in (1, len(whole) - 1):
        seeked = windows(files[kind], start=ResumePoint(k, whole[k].offset))
        assert [w.index for w in seeked] == [w.index for w in whole[k:]]
        assert [w.offset for w in seeked] == pytest.approx([w.offset for w in whole[k:]], abs=FRAME / 16000)
        assert seeked[-1].last and not any(w.last for w in seeked[:-1])
        assert {w.total for w in seeked} == {whole[0].total}
        for a, b in zip(whole[k:], seeked, strict=True):
            assert_same_signal(a.audio, b.audio)


def test_a_resume_point_between_windows_starts_exactly_there(files: dict[str, Path]) -> None:
    """A point that is no window's start: the first window begins at it, with the samples after it."""
    whole = np.concatenate([w.audio for w in windows(files["webm"])])
    (first, *_) = windows(files["webm"], start=ResumePoint(5, 7.25))
    assert (first.index, first.offset) == (5, 7.25)
    assert_same_signal(whole[round(7.25 * 16000) :][: len(first.audio)], first.audio)


async def test_the_child_the_pool_and_the_thread_seek_as_in_process(
    files: dict[str, Path], asr: WhisperTranscriber
) -> None:
    """The decoder child, the pool (VAD + features in workers) and the thread path give what
    iter_windows gives here for the same resume point: audio, chunks, features, numbering."""
    from faster_whisper.feature_extractor import FeatureExtractor

    path = files["m4a"]
    point = ResumePoint(1, windows(path)[1].offset)
    extractor = FeatureExtractor(**asr.prepare_options["features"])
    here = list(iter_windows(path, batching="cross", extractor=extractor, window_s=WINDOW_S, start=point))
    child = DecoderProcess(asr.prepare_options)
    pool = DecodePool(asr.prepare_options, workers=2)
    with ThreadPoolExecutor(1) as thread:
        try:
            got = {
                "child": [w async for w in child.windows(path, start=point)],
                "pool": [w async for w in pool.windows(path, start=point)],
                "thread": [w async for w in windows_in_thread(asr, thread)(path, start=point)],
            }
        finally:
            await child.aclose()
            await pool.aclose()
    for name, there in got.items():
        assert len(there) == len(here), name
        for a, b in zip(here, there, strict=True):
            assert (a.offset, a.index, a.last, a.total) == (b.offset, b.index, b.last, b.total), name
            assert np.array_equal(a.audio, b.audio) and (a.clips, a.chunks) == (b.clips, b.chunks), name
            assert a.features is not None and b.features is not None
            assert np.array_equal(a.features, b.features), name


def test_the_containers_that_read_while_growing() -> None:
    """WebM and audio-only MP4 with its index first read front to back; an MP4 with its index
    last or with a video track, an mp3 or too few bytes to tell do not (None: not yet)."""
    ebml = b"\x1a\x45\xdf\xa3" + bytes(20)

    def box(kind: bytes, n: int = 16) -> bytes:
        return n.to_bytes(4, "big") + kind + bytes(n - 8)

    assert streamable(ebml) is True
    hdlr = (33).to_bytes(4, "big") + b"hdlr" + bytes(8) + b"soun" + bytes(13)
    video = hdlr.replace(b"soun", b"vide")
    assert streamable(box(b"ftyp") + box(b"moov")) is True
    assert streamable(box(b"ftyp") + (8 + 33).to_bytes(4, "big") + b"moov" + hdlr) is True
    assert streamable(box(b"ftyp") + (8 + 66).to_bytes(4, "big") + b"moov" + hdlr + video) is False
    assert streamable(box(b"ftyp") + box(b"moov", 4096)[:1000]) is None  # its moov not all seen yet
    assert streamable(box(b"ftyp") + box(b"free", 8) + box(b"mdat", 1 << 20)) is False
    assert streamable(box(b"ftyp") + box(b"moof")) is False
    assert streamable(b"ID3\x04" + bytes(60)) is False
    assert streamable(box(b"ftyp", 64)) is None
    assert streamable(b"\x00\x00") is None


class Writer:
    """Writes ``src`` into ``part`` as a download would: its head, then up to ``pause_at`` of it,
    then (once ``go`` is set) the rest and the end marker, or ``error``'s marker instead."""

    def __init__(self, src: Path, part: Path, *, pause_at: float, error: str | None = None) -> None:
        self.data, self.part, self.error = src.read_bytes(), part, error
        self.stop_at = int(len(self.data) * pause_at)
        self.written = 0
        self.go = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.part.open("wb") as f:
            for limit in (self.stop_at, len(self.data)):
                while self.written < limit:
                    step = min(32 * 1024, limit - self.written)
                    f.write(self.data[self.written : self.written + step])
                    f.flush()
                    self.written += step
                    time.sleep(0.01)
                if limit == self.stop_at:
                    self.go.wait(60)
                    if self.error is not None:
                        mark_end(self.part, self.error)
                        return
        self.part.rename(self.part.with_suffix(""))  # as yt-dlp renames the .part when complete
        mark_end(self.part)

    def __enter__(self) -> Writer:
        self.thread.start()
        while self.written < 64 * 1024:  # handed on once it has begun, as the download stage does
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.go.set()
        self.thread.join()


@pytest.mark.parametrize("kind", ["webm", "frag"])
def test_a_growing_file_gives_its_first_window_before_the_download_ends(
    files: dict[str, Path], kind: str, tmp_path: Path
) -> None:
    """A WebM or fragmented m4a being written: its first window comes while 70% of it is written,
    and all its windows are those of the whole file."""
    part = tmp_path / f"v.{files[kind].suffix[1:]}.part"
    whole = windows(files[kind])
    with Writer(files[kind], part, pause_at=0.7) as writer:
        got = iter_windows(
            part.with_suffix(""), batching="off", extractor=None, window_s=WINDOW_S, growing=part, stall_s=30
        )
        first = next(got)
        assert writer.written <= writer.stop_at and not writer.go.is_set()  # at most 70% written
        writer.go.set()
        rest = list(got)
    assert [(w.index, w.offset, w.last, len(w.audio)) for w in [first, *rest]] == [
        (w.index, w.offset, w.last, len(w.audio)) for w in whole
    ]
    assert np.array_equal(
        np.concatenate([w.audio for w in [first, *rest]]), np.concatenate([w.audio for w in whole])
    )


def test_a_failed_download_ends_the_read_with_its_reason(files: dict[str, Path], tmp_path: Path) -> None:
    """The download fails at 60%: the windows decoded so far, then DownloadEnded with the reason."""
    part = tmp_path / "v.webm.part"
    got: list[PreparedAudio] = []
    with Writer(files["webm"], part, pause_at=0.6, error="HTTP Error 500") as writer:
        writer.go.set()
        with pytest.raises(DownloadEnded, match="HTTP Error 500"):
            for w in iter_windows(
                part.with_suffix(""), batching="off", extractor=None, window_s=WINDOW_S, growing=part
            ):
                got.append(w)
    assert not any(w.last for w in got)


def test_a_silent_download_times_out(files: dict[str, Path], tmp_path: Path) -> None:
    """No new bytes and no end marker for stall_s: DownloadEnded, not a hang."""
    part = tmp_path / "v.webm.part"
    part.write_bytes(files["webm"].read_bytes()[:50_000])
    reader = GrowingFile(part, stall_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(DownloadEnded, match="wrote nothing"):
        while reader.read(65536):
            pass
    assert time.monotonic() - t0 < 10
    reader.close()
    assert not end_marker(part).exists()


async def test_the_child_reports_a_failed_download_as_such(files: dict[str, Path], tmp_path: Path) -> None:
    """Through the decoder child: DownloadEnded (not a corrupt file), and the child serves on."""
    part = tmp_path / "v.webm.part"
    part.write_bytes(files["webm"].read_bytes()[:100_000])
    mark_end(part, "gave up after 3 attempts")
    child = DecoderProcess({"batching": "off", "features": {}, "window_s": WINDOW_S})
    try:
        with pytest.raises(DownloadEnded, match="gave up after 3 attempts"):
            _ = [w async for w in child.windows(part.with_suffix(""), growing=part)]
        again = [w.index async for w in child.windows(files["mp3"])]
    finally:
        await child.aclose()
    assert again == [0, 1, 2]


def test_a_growing_file_starts_with_a_short_window(tmp_path: Path) -> None:
    """Read as it downloads, the first window is at most GROWING_FIRST_S (the model starts after a
    minute of audio, not a whole window); the samples are still the whole file's, in order."""
    src = long_episode(2, default_cache_dir(), fmt="webm").path
    whole = np.concatenate([w.audio for w in windows(src)])
    part = tmp_path / "v.webm.part"
    with Writer(src, part, pause_at=0.5) as writer:
        writer.go.set()
        got = list(
            iter_windows(part.with_suffix(""), batching="off", extractor=None, window_s=100, growing=part)
        )
    assert GROWING_FIRST_S - SEARCH_S <= got[1].offset <= GROWING_FIRST_S
    assert [w.index for w in got] == list(range(len(got))) and got[-1].last
    assert np.array_equal(np.concatenate([w.audio for w in got]), whole)


def test_a_growing_file_resumes_by_dropping_what_comes_before_the_point(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """A resume point on a file still downloading (it cannot seek ahead): the windows from the point
    are those of a seek on the whole file, numbered on, the same samples."""
    whole = windows(files["webm"])
    point = ResumePoint(1, whole[1].offset)
    part = tmp_path / "v.webm.part"
    with Writer(files["webm"], part, pause_at=0.5) as writer:
        writer.go.set()
        got = windows(part.with_suffix(""), start=point, growing=part)
    seeked = windows(files["webm"], start=point)
    assert [(w.index, w.offset, w.last) for w in got] == [(w.index, w.offset, w.last) for w in seeked]
    for a, b in zip(got, seeked, strict=True):
        assert_same_signal(a.audio, b.audio)
