"""The decode pool on real audio: a reader process cuts windows, worker processes add VAD and
features, and what comes out is what one process makes, in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ytingest.errors import TranscribeError
from ytingest.models.asr import WhisperTranscriber
from ytingest.stages.decode_pool import DecodePool
from ytingest.testing.long_episodes import long_episode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def asr() -> WhisperTranscriber:
    return WhisperTranscriber(batching="cross", batch_size=8, window_s=60)


@pytest.mark.parametrize("workers", [2, 1])
async def test_windows_from_the_pool_equal_one_process_in_order(
    asr: WhisperTranscriber, tmp_path: Path, workers: int
) -> None:
    """A 4-minute episode in 60 s windows through a reader and 2 workers (or, with 1, the reader
    alone): the same windows, clips, chunks and features as ``prepare_windows`` in this process,
    in order."""
    episode = long_episode(4, tmp_path)
    alone = list(asr.prepare_windows(episode.path))
    pool = DecodePool(asr.prepare_options, workers=workers)
    try:
        pooled = [w async for w in pool.windows(episode.path)]
        again = [w.index async for w in pool.windows(episode.path)]  # the pool serves file after file
    finally:
        await pool.aclose()
    assert len(alone) >= 4 and [w.index for w in pooled] == list(range(len(alone))) == again
    assert pooled[-1].last and not any(w.last for w in pooled[:-1])
    for a, p in zip(alone, pooled, strict=True):
        assert p.offset == a.offset and np.array_equal(p.audio, a.audio)
        assert p.clips == a.clips and p.chunks == a.chunks
        assert p.features is not None and a.features is not None and np.array_equal(p.features, a.features)


async def test_a_corrupt_file_is_a_transcribe_error_and_the_pool_goes_on(
    asr: WhisperTranscriber, tmp_path: Path
) -> None:
    """Bytes that are no audio fail that file with a TranscribeError; the next file decodes."""
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(b"\x00not audio" * 1000)
    episode = long_episode(1, tmp_path)
    pool = DecodePool(asr.prepare_options, workers=2)
    try:
        with pytest.raises(TranscribeError):
            _ = [w async for w in pool.windows(bad)]
        good = [w async for w in pool.windows(episode.path)]
    finally:
        await pool.aclose()
    assert len(good) == 1 and good[0].features is not None and len(good[0].chunks) >= 1


async def test_a_consumer_that_stops_early_leaves_the_pool_usable(
    asr: WhisperTranscriber, tmp_path: Path
) -> None:
    """Closing the window stream after the first window (a failed video) cancels the rest; the
    pool then decodes the next file from its start."""
    episode = long_episode(4, tmp_path)
    pool = DecodePool(asr.prepare_options, workers=2)
    try:
        stream = pool.windows(episode.path)
        first = await anext(stream)
        await stream.aclose()
        again = [w async for w in pool.windows(episode.path)]
    finally:
        await pool.aclose()
    assert first.index == 0 and [w.index for w in again][:2] == [0, 1] and again[-1].last
