"""The decoder process gives exactly what in-thread preparation gives, and survives bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from ytingest.errors import TranscribeError
from ytingest.models.asr import WhisperTranscriber
from ytingest.stages.decoder_process import DecoderProcess
from ytingest.testing import sample_episodes


@pytest.fixture(scope="module")
def asr() -> WhisperTranscriber:
    return WhisperTranscriber("bundled", device="cpu", batching="cross")


@pytest.fixture
async def decoder(asr: WhisperTranscriber) -> AsyncIterator[DecoderProcess]:
    d = DecoderProcess(asr.prepare_options)
    yield d
    await d.aclose()


async def test_same_audio_chunks_and_features_as_in_process(
    asr: WhisperTranscriber, decoder: DecoderProcess
) -> None:
    for ep in sample_episodes()[:2]:
        here, there = asr.prepare(ep.path), await decoder.prepare(ep.path)
        assert np.array_equal(here.audio, there.audio)
        assert here.features is not None and there.features is not None
        assert np.array_equal(here.features, there.features)
        assert (here.clips, here.chunks) == (there.clips, there.chunks)
        assert asr.transcribe_prepared([here])[0].segments == asr.transcribe_prepared([there])[0].segments


async def test_a_bad_file_fails_alone_and_a_dead_child_is_replaced(
    tmp_path: Path, decoder: DecoderProcess
) -> None:
    bad = tmp_path / "not-audio.mp3"
    bad.write_text("<html>nope</html>")
    with pytest.raises(TranscribeError, match="cannot decode audio"):
        await decoder.prepare(bad)
    good = sample_episodes()[0].path
    assert (await decoder.prepare(good)).seconds > 1
    assert decoder._proc is not None
    decoder._proc.kill()  # what a crash inside libav would look like, mid-request
    with pytest.raises(TranscribeError, match="decoder process stopped"):
        await decoder.prepare(good)
    assert (await asyncio.wait_for(decoder.prepare(good), 60)).seconds > 1  # a new child
