"""A long file, decoded a window at a time: ``iter_windows`` streams PyAV's samples and cuts them
at quiet points into ``PreparedAudio`` windows of about ``window_s``, so the memory one video
needs is bounded by the window, not by the video's length.

The samples are exactly ``decode_file``'s (``faster_whisper.decode_audio``): the same resampler
(s16, mono, 16 kHz), fed the same 500 000-sample groups of frames, converted to float32 the
same way. Only the holding differs. Executor or decoder child only.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import numpy.typing as npt

from ytingest.errors import TranscribeError
from ytingest.items import SAMPLE_RATE, PreparedAudio, ResumePoint
from ytingest.models.batched_asr import prepare_audio
from ytingest.models.growing import STALL_S, DownloadEnded, GrowingFile, open_growing

if TYPE_CHECKING:
    from faster_whisper.feature_extractor import FeatureExtractor

SEARCH_S = 20.0  # a window is cut at the quietest point of its last this-many seconds
FRAME_S, HOP_S = 0.1, 0.01  # the loudness of 100 ms frames, every 10 ms, picks that point
GROUP = 500_000  # input samples per resampler call, as faster_whisper.decode_audio groups them
GROWING_FIRST_S = 60.0  # the first window of a file read as it downloads (+ its search) is this short

Samples = npt.NDArray[np.float32]


def iter_windows(
    path: Path,
    *,
    batching: str,
    extractor: FeatureExtractor | None,
    window_s: float,
    start: ResumePoint | None = None,
    growing: Path | None = None,
    stall_s: float = STALL_S,
) -> Iterator[PreparedAudio]:
    """``path``'s audio as consecutive windows, with VAD + features per window unless ``batching``
    is off. TranscribeError: the file cannot be decoded (possibly after some windows) or is empty.
    A truncated file (an interrupted download) ends early without an error, as in decode_file.

    ``start``: begin at ``start.offset`` seconds (a seek, then the samples before it dropped),
    numbering windows from ``start.index``; offsets stay on the video's timeline. ``growing``: the
    ``.part`` yt-dlp is still writing, read as it grows (``models/growing.py``; a resume point
    there is reached by decoding and dropping, as a growing file cannot seek ahead; its first
    window is at most GROWING_FIRST_S long, so the model begins after a minute of audio has
    arrived, not ``window_s``); DownloadEnded when the download fails or stalls for ``stall_s``.

    Cut rule: once ``window_s`` + S of audio is held (S = min(20 s, window_s / 2)), the window
    ends at the centre of the quietest 100 ms frame in [window_s - S, window_s]. A pause between
    words or sentences nearly always falls in 20 s of speech, so a cut rarely splits a word, and
    since S more seconds always follow a cut the final window is never a stub: a file shorter
    than window_s + S is one window, as before windows. Held at most: one window + S + a group.
    """
    if window_s < 1:
        raise ValueError(f"window_s must be at least 1 s, not {window_s}")
    size = round(window_s * SAMPLE_RATE)
    search = round(min(SEARCH_S, window_s / 2) * SAMPLE_RATE)
    full = size, search
    if growing is not None and window_s > GROWING_FIRST_S:  # the model starts on a short first window
        size = round(GROWING_FIRST_S * SAMPLE_RATE)
        search = round(min(SEARCH_S, GROWING_FIRST_S / 2) * SAMPLE_RATE)
    source = open_growing(growing, path, stall_s=stall_s) if growing is not None else path
    try:
        container = av.open(
            source if isinstance(source, GrowingFile) else str(source), mode="r", metadata_errors="ignore"
        )
    except DownloadEnded:
        if isinstance(source, GrowingFile):
            source.close()
        raise
    except Exception as exc:  # PyAV raises many types for missing, corrupt or non-audio files
        if isinstance(source, GrowingFile):
            source.close()
        raise _decode_error(exc) from None
    with container, source if isinstance(source, GrowingFile) else contextlib.nullcontext():
        total = container.duration / av.time_base if container.duration else None
        buffer = np.empty(sum(full) + GROUP, dtype=np.float32)  # pages count once written
        target = round(start.offset * SAMPLE_RATE) if start is not None else 0
        if target and not isinstance(source, GrowingFile):
            _seek(container, start.offset if start is not None else 0.0)
        held, index = 0, start.index if start is not None else 0
        pieces = _from(_samples(container), target)
        start_at = next(pieces)  # where the first sample lies on the video's timeline (samples)
        for piece in pieces:
            if held + len(piece) > len(buffer):  # a piece longer than GROUP samples (a low input rate)
                buffer = _grown(buffer, held, held + len(piece))
            buffer[held : held + len(piece)] = piece
            held += len(piece)
            while held >= size + search:
                cut = _quietest(buffer, size - search, size)
                window, buffer = buffer[:cut], _grown(buffer[cut:held], held - cut, len(buffer))
                held -= cut
                yield _window(window, batching, extractor, start_at, index, False, total)
                del window  # the consumer's now: not held while the next one fills
                start_at, index = start_at + cut, index + 1
                size, search = full
    if held == 0:
        raise TranscribeError("audio file holds no samples" + (" after the resume point" if target else ""))
    yield _window(buffer[:held], batching, extractor, start_at, index, True, total)


def _seek(container: av.container.InputContainer, seconds: float) -> None:
    """To the audio frame at or before ``seconds`` (a file that cannot seek is decoded from its
    start, the samples before ``seconds`` dropped all the same)."""
    stream = container.streams.audio[0]
    if stream.time_base is None:
        return
    first = stream.start_time or 0
    with contextlib.suppress(av.error.FFmpegError):
        container.seek(first + int(seconds / stream.time_base), backward=True, any_frame=False, stream=stream)


def _from(pieces: Iterator[Samples | float], target: int) -> Iterator[Any]:
    """First where the samples begin (in samples on the video's timeline: ``target``, or later
    when there is nothing before it), then the pieces with the samples before ``target`` dropped.
    ``pieces`` starts with the first frame's time on that timeline (``_samples``)."""
    first = next(pieces)
    assert isinstance(first, float)
    at = round(first * SAMPLE_RATE)  # the first decoded sample's place
    yield max(at, target)
    drop = max(0, target - at)
    for piece in pieces:
        assert not isinstance(piece, float)
        if drop >= len(piece):
            drop -= len(piece)
            continue
        yield piece[drop:] if drop else piece
        drop = 0


def _samples(container: av.container.InputContainer) -> Iterator[Samples | float]:
    """16 kHz mono float32 pieces, as ``faster_whisper.decode_audio`` makes them, after the first
    frame's time on the video's timeline (seconds from the stream's first timestamp; 0.0 when
    there is none)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    try:
        frames = _valid(container.decode(audio=0))
        first = next(frames, None)
        stream = container.streams.audio[0]
        if first is not None and first.pts is not None and stream.time_base is not None:
            yield max(0.0, float((first.pts - (stream.start_time or 0)) * stream.time_base))
        else:
            yield 0.0
        groups = _groups(itertools.chain([first] if first is not None else [], frames))
        for group in itertools.chain(groups, [None]):  # None flushes the resampler
            for frame in resampler.resample(group):
                yield frame.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
    except DownloadEnded:
        raise
    except Exception as exc:
        raise _decode_error(exc) from None
    finally:
        del resampler
        gc.collect()  # as decode_audio: the resampler's objects are not freed otherwise


def _valid(frames: Iterable[av.AudioFrame]) -> Iterator[av.AudioFrame]:
    """Skip frames the decoder calls invalid data, as decode_audio does."""
    iterator = iter(frames)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def _groups(frames: Iterable[av.AudioFrame]) -> Iterator[av.AudioFrame]:
    """Frames regrouped into ``GROUP``-sample frames (timestamps dropped), as decode_audio does."""
    fifo = av.AudioFifo()
    for frame in frames:
        frame.pts = None
        fifo.write(frame)
        if fifo.samples >= GROUP:
            group = fifo.read()
            assert group is not None
            yield group
    if fifo.samples > 0:
        group = fifo.read()
        assert group is not None
        yield group


def _grown(samples: Samples, used: int, capacity: int) -> Samples:
    """A new buffer of ``capacity`` samples that starts with ``samples[:used]``."""
    buffer = np.empty(capacity, dtype=np.float32)
    buffer[:used] = samples[:used]
    return buffer


def _quietest(audio: Samples, lo: int, hi: int) -> int:
    """The centre of the quietest (lowest energy) 100 ms frame within ``audio[lo:hi]``; the
    latest such frame on a tie (a longer window)."""
    frame, hop = round(FRAME_S * SAMPLE_RATE), round(HOP_S * SAMPLE_RATE)
    region = audio[lo:hi].astype(np.float64)
    sums = np.concatenate(([0.0], np.cumsum(region * region)))
    starts = np.arange(0, len(region) - frame + 1, hop)
    energy = sums[starts + frame] - sums[starts]
    best = len(energy) - 1 - int(np.argmin(energy[::-1]))
    return lo + int(starts[best]) + frame // 2


def _window(
    audio: Samples,
    batching: str,
    extractor: FeatureExtractor | None,
    start: int,
    index: int,
    last: bool,
    total: float | None,
) -> PreparedAudio:
    offset = start / SAMPLE_RATE
    if batching == "off":
        return PreparedAudio(audio, offset=offset, index=index, last=last, total=total)
    if extractor is None:
        raise ValueError(f"batching {batching!r} needs a feature extractor")
    try:
        prepared = prepare_audio(extractor, audio)
    except Exception as exc:
        raise TranscribeError(f"VAD/features failed: {type(exc).__name__}: {exc}") from None
    return replace(prepared, offset=offset, index=index, last=last, total=total)


def _decode_error(exc: Exception) -> TranscribeError:
    return TranscribeError(f"cannot decode audio: {type(exc).__name__}: {exc}")
