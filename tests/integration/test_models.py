"""The real bundled models: faster-whisper tiny.en and all-MiniLM-L6-v2, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.wer import MAX_EPISODE_WER, wer
from ytingest.errors import ConfigError, TranscribeError
from ytingest.models.asr import WhisperTranscriber
from ytingest.models.embedder import SentenceEmbedder
from ytingest.testing import sample_episodes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def asr() -> WhisperTranscriber:
    return WhisperTranscriber("bundled", device="cpu")


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder("bundled", device="cpu", batch_size=8)


def test_transcribes_a_sample_close_to_its_script(asr: WhisperTranscriber) -> None:
    """An episode's transcript matches the text it was spoken from, with ordered timestamps."""
    ep = next(e for e in sample_episodes() if e.id == "ep05-volcano")
    result = asr.transcribe(ep.path)
    assert wer(ep.text, " ".join(s.text for s in result.segments)) <= MAX_EPISODE_WER
    assert result.audio_seconds == pytest.approx(ep.duration, abs=0.2)
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and all(s.end > s.start for s in result.segments)
    assert [s.idx for s in result.segments] == list(range(len(result.segments)))


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 100, b"ID3\x03\x00" + b"\xff" * 50])
def test_corrupt_empty_or_non_audio_file_is_a_transcribe_error(
    asr: WhisperTranscriber, tmp_path: Path, content: bytes
) -> None:
    """Bad files raise TranscribeError with a reason; the model keeps working afterwards."""
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(content)
    with pytest.raises(TranscribeError):
        asr.transcribe(bad)
    assert asr.transcribe(sample_episodes()[2].path).segments  # still usable


def test_missing_model_folder_is_a_config_error() -> None:
    """ASR_MODEL pointing at a folder that does not exist fails at load time, clearly."""
    with pytest.raises(ConfigError, match="not found"):
        WhisperTranscriber("/nonexistent/whisper-model", device="cpu")


def test_embeddings_are_normalised_and_meaningful(embedder: SentenceEmbedder) -> None:
    """384-d unit vectors; a paraphrase is nearer than an unrelated sentence."""
    vecs = embedder.encode(
        [
            "Volcanoes erupt when magma rises.",
            "Magma rising makes a volcano erupt.",
            "Tomatoes need full sun.",
        ]
    )
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3
    assert embedder.encode([]).shape == (0, 384)
