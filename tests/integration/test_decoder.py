"""The decoder process gives exactly the windows in-process decoding gives, and survives bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from ytingest.errors import TranscribeError
from ytingest.items import PreparedAudio
from ytingest.models.asr import WhisperTranscriber
from ytingest.models.windows import iter_windows
from ytingest.stages.decoder_process import DecoderProcess
from ytingest.testing import sample_episodes
from ytingest.testing.channel import SAMPLES

WINDOW_S = 20.0  # small, so a 65 s sample is several windows and a 15-19 s one is one
LONG = SAMPLES / "ep06-bread.mp3"


@pytest.fixture(scope="module")
def asr() -> WhisperTranscriber:
    return WhisperTranscriber("bundled", device="cpu", batching="cross")


@pytest.fixture
async def decoder(asr: WhisperTranscriber) -> AsyncIterator[DecoderProcess]:
    d = DecoderProcess({**asr.prepare_options, "window_s": WINDOW_S})
    yield d
    await d.aclose()


async def collect(decoder: DecoderProcess, path: Path) -> list[PreparedAudio]:
    return [w async for w in decoder.windows(path)]


def assert_same(here: PreparedAudio, there: PreparedAudio) -> None:
    assert (here.offset, here.index, here.last, here.total) == (
        there.offset,
        there.index,
        there.last,
        there.total,
    )
    assert np.array_equal(here.audio, there.audio)
    assert (here.clips, here.chunks) == (there.clips, there.chunks)
    assert here.features is not None and there.features is not None
    assert np.array_equal(here.features, there.features)


async def test_a_short_file_is_one_window_as_prepared_in_process(
    asr: WhisperTranscriber, decoder: DecoderProcess
) -> None:
    """A file shorter than a window: one window, the same audio, chunks, features and text as before."""
    for ep in sample_episodes()[:2]:
        here, (there,) = asr.prepare(ep.path), await collect(decoder, ep.path)
        assert (there.offset, there.index, there.last) == (0.0, 0, True)
        assert np.array_equal(here.audio, there.audio)
        assert here.features is not None and there.features is not None
        assert np.array_equal(here.features, there.features)
        assert (here.clips, here.chunks) == (there.clips, there.chunks)
        assert asr.transcribe_prepared([here])[0].segments == asr.transcribe_prepared([there])[0].segments


async def test_a_long_file_streams_the_windows_made_in_process(
    asr: WhisperTranscriber, decoder: DecoderProcess
) -> None:
    """Over several windows the child sends what iter_windows makes here, in order, the last marked."""
    extractor = FeatureExtractor(**asr.prepare_options["features"])
    here = list(iter_windows(LONG, batching="cross", extractor=extractor, window_s=WINDOW_S))
    there = await collect(decoder, LONG)
    assert len(there) == len(here) >= 3
    for a, b in zip(here, there, strict=True):
        assert_same(a, b)


async def test_a_bad_file_fails_alone_and_a_dead_child_is_replaced(
    tmp_path: Path, decoder: DecoderProcess
) -> None:
    """A file that is not audio is a TranscribeError; a child that died is one, then started again."""
    bad = tmp_path / "not-audio.mp3"
    bad.write_text("<html>nope</html>")
    with pytest.raises(TranscribeError, match="cannot decode audio"):
        await collect(decoder, bad)
    good = sample_episodes()[0].path
    assert (await collect(decoder, good))[0].seconds > 1
    assert decoder._proc is not None
    decoder._proc.kill()  # what a crash inside libav would look like, mid-request
    with pytest.raises(TranscribeError, match="decoder process stopped"):
        await collect(decoder, good)
    assert (await asyncio.wait_for(collect(decoder, good), 60))[0].seconds > 1  # a new child


async def test_stopping_mid_file_starts_a_fresh_child(
    asr: WhisperTranscriber, decoder: DecoderProcess
) -> None:
    """Closing the windows of a file after the first kills the out-of-step child; the next call works."""
    async with aclosing(decoder.windows(LONG)) as windows:
        async for first in windows:
            assert not first.last
            break
    assert decoder._proc is None
    extractor = FeatureExtractor(**asr.prepare_options["features"])
    here = list(iter_windows(LONG, batching="cross", extractor=extractor, window_s=WINDOW_S))
    for a, b in zip(here, await collect(decoder, LONG), strict=True):
        assert_same(a, b)


async def test_a_cancelled_reader_leaves_no_half_answer(decoder: DecoderProcess) -> None:
    """A consumer cancelled while it waits for a window: the child is killed, the next call works."""

    async def read_all() -> list[PreparedAudio]:
        async with aclosing(decoder.windows(LONG)) as windows:
            return [w async for w in windows]

    await decoder.start()
    task = asyncio.create_task(read_all())
    await asyncio.sleep(0)  # the request is sent; the task waits for the first header
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert decoder._proc is None
    again = await collect(decoder, LONG)
    assert [w.index for w in again] == list(range(len(again))) and again[-1].last
