"""A long file, decoded a window at a time: ``iter_windows`` streams PyAV's samples and cuts them
at quiet points into ``PreparedAudio`` windows of about ``window_s``, so the memory one video
needs is bounded by the window, not by the video's length.

The samples are exactly ``decode_file``'s (``faster_whisper.decode_audio``): the same resampler
(s16, mono, 16 kHz), fed the same 500 000-sample groups of frames, converted to float32 the
same way. Only the holding differs. Executor or decoder child only.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
import numpy.typing as npt

from ytingest.errors import TranscribeError
from ytingest.items import SAMPLE_RATE, PreparedAudio
from ytingest.models.batched_asr import prepare_audio

if TYPE_CHECKING:
    from faster_whisper.feature_extractor import FeatureExtractor

SEARCH_S = 20.0  # a window is cut at the quietest point of its last this-many seconds
FRAME_S, HOP_S = 0.1, 0.01  # the loudness of 100 ms frames, every 10 ms, picks that point
GROUP = 500_000  # input samples per resampler call, as faster_whisper.decode_audio groups them

Samples = npt.NDArray[np.float32]


def iter_windows(
    path: Path, *, batching: str, extractor: FeatureExtractor | None, window_s: float
) -> Iterator[PreparedAudio]:
    """``path``'s audio as consecutive windows, with VAD + features per window unless ``batching``
    is off. TranscribeError: the file cannot be decoded (possibly after some windows) or is empty.
    A truncated file (an interrupted download) ends early without an error, as in decode_file.

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
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except Exception as exc:  # PyAV raises many types for missing, corrupt or non-audio files
        raise _decode_error(exc) from None
    with container:
        total = container.duration / av.time_base if container.duration else None
        buffer = np.empty(size + search + GROUP, dtype=np.float32)  # pages count once written
        held = start = index = 0
        for piece in _samples(container):
            if held + len(piece) > len(buffer):  # a piece longer than GROUP samples (a low input rate)
                buffer = _grown(buffer, held, held + len(piece))
            buffer[held : held + len(piece)] = piece
            held += len(piece)
            while held >= size + search:
                cut = _quietest(buffer, size - search, size)
                window, buffer = buffer[:cut], _grown(buffer[cut:held], held - cut, len(buffer))
                held -= cut
                yield _window(window, batching, extractor, start, index, False, total)
                del window  # the consumer's now: not held while the next one fills
                start, index = start + cut, index + 1
    if held == 0:
        raise TranscribeError("audio file holds no samples")
    yield _window(buffer[:held], batching, extractor, start, index, True, total)


def _samples(container: av.container.InputContainer) -> Iterator[Samples]:
    """16 kHz mono float32 pieces, as ``faster_whisper.decode_audio`` makes them."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    try:
        groups = _groups(_valid(container.decode(audio=0)))
        for group in itertools.chain(groups, [None]):  # None flushes the resampler
            for frame in resampler.resample(group):
                yield frame.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
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
