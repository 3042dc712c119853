"""Cross-file batched Whisper: VAD speech chunks of several files share one encoder/decoder batch.

faster-whisper's ``BatchedInferencePipeline`` batches the chunks of one file. Here the same
pieces are split in two: ``prepare_audio`` (VAD → ``collect_chunks`` → log-mel features; no model
inference, so it runs in the decoder process) and ``ChunkBatcher.run`` (``BatchedInferencePipeline.
forward`` on batches that mix chunks of many files), then each file's segments are mapped back to
its own timeline with ``restore_speech_timestamps``. Executor only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ytingest.errors import TranscribeError
from ytingest.items import SAMPLE_RATE, PreparedAudio, Segment

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.feature_extractor import FeatureExtractor

CHUNK_S = 30  # Whisper's window; VAD regions are merged into chunks of at most this length


def decode_file(path: Path) -> npt.NDArray[np.float32]:
    """Decode any audio file to 16 kHz mono float32."""
    from faster_whisper import decode_audio

    try:
        audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV raises many types for corrupt or non-audio files
        raise TranscribeError(f"cannot decode audio: {type(exc).__name__}: {exc}") from None
    if audio.size == 0:
        raise TranscribeError("audio file holds no samples")
    return np.asarray(audio, dtype=np.float32)


def prepare_audio(extractor: FeatureExtractor, audio: npt.NDArray[np.float32]) -> PreparedAudio:
    """VAD and features the way ``BatchedInferencePipeline.transcribe`` makes them (no inference)."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    vad = VadOptions(max_speech_duration_s=CHUNK_S, min_silence_duration_ms=160)
    clips = get_speech_timestamps(audio, vad)
    if not clips:
        return PreparedAudio(audio)
    pieces, meta = collect_chunks(audio, clips, max_duration=CHUNK_S)
    features = np.stack([pad_or_trim(extractor(p)[..., :-1]) for p in pieces]).astype(np.float32)
    return PreparedAudio(audio, tuple(clips), tuple(meta), features)


def prepare_file(path: Path, *, batching: str, extractor: FeatureExtractor) -> PreparedAudio:
    """Decode (and, unless ``batching`` is off, VAD + features): all the CPU work before the model."""
    audio = decode_file(path)
    if batching == "off":
        return PreparedAudio(audio)
    try:
        return prepare_audio(extractor, audio)
    except Exception as exc:
        raise TranscribeError(f"VAD/features failed: {type(exc).__name__}: {exc}") from None


class ChunkBatcher:
    """Runs the speech chunks of any number of prepared files in batches of ``batch_size``."""

    def __init__(self, model: WhisperModel, *, batch_size: int = 8, beam_size: int = 1) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import (
            BatchedInferencePipeline,
            TranscriptionOptions,
            get_suppressed_tokens,
        )

        self.batch_size = batch_size
        self._pipe = BatchedInferencePipeline(model)
        multilingual = bool(model.model.is_multilingual)
        # multilingual: generate_segment_batched detects the language of every chunk on its own
        self._tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe", language="en")
        self._options = TranscriptionOptions(
            beam_size=beam_size,
            best_of=5,
            patience=1,
            length_penalty=1,
            repetition_penalty=1,
            no_repeat_ngram_size=0,
            log_prob_threshold=-1.0,
            no_speech_threshold=0.6,
            compression_ratio_threshold=2.4,
            condition_on_previous_text=False,
            prompt_reset_on_temperature=0.5,
            temperatures=[0.0],
            initial_prompt=None,
            prefix=None,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(self._tokenizer, [-1]),
            without_timestamps=False,  # sentence-level segments, as the per-file default gives
            max_initial_timestamp=0.0,
            word_timestamps=False,
            prepend_punctuations="\"'“¿([{-",
            append_punctuations="\"'.。,，!！?？:：”)]}、",
            multilingual=multilingual,
            max_new_tokens=None,
            clip_timestamps="0",
            hallucination_silence_threshold=None,
            hotwords=None,
        )

    def run(self, items: Sequence[PreparedAudio]) -> list[tuple[Segment, ...]]:
        """Segments of every item, in its own time, in order; chunks of all items share batches."""
        refs = [(i, j) for i, p in enumerate(items) for j in range(len(p.chunks))]
        outputs: list[list[list[dict[str, Any]]]] = [[[] for _ in p.chunks] for p in items]
        for k in range(0, len(refs), self.batch_size):
            part = refs[k : k + self.batch_size]
            feats = np.stack([_features(items[i])[j] for i, j in part])
            meta = [items[i].chunks[j] for i, j in part]
            results = self._pipe.forward(feats, self._tokenizer, meta, self._options)
            for (i, j), result in zip(part, results, strict=True):
                outputs[i][j] = result
        return [_segments(p, out) for p, out in zip(items, outputs, strict=True)]


def _features(item: PreparedAudio) -> npt.NDArray[np.float32]:
    assert item.features is not None
    return item.features


def _segments(item: PreparedAudio, chunks: list[list[dict[str, Any]]]) -> tuple[Segment, ...]:
    """One file's chunk outputs → its timeline (VAD gaps put back), clamped to the audio."""
    from faster_whisper.transcribe import Segment as FwSegment
    from faster_whisper.transcribe import restore_speech_timestamps

    raw = [
        FwSegment(
            id=0,
            seek=s["seek"],
            start=s["start"],
            end=s["end"],
            text=s["text"],
            tokens=s["tokens"],
            avg_logprob=s["avg_logprob"],
            compression_ratio=s["compression_ratio"],
            no_speech_prob=s["no_speech_prob"],
            words=None,
            temperature=0.0,
        )
        for chunk in chunks
        for s in chunk
        if s["text"].strip()
    ]
    restored = restore_speech_timestamps(raw, list(item.clips), SAMPLE_RATE)
    end_of_audio = item.seconds
    out: list[Segment] = []
    for s in restored:
        start = min(max(float(s.start), 0.0), end_of_audio)
        end = min(max(float(s.end), start), end_of_audio)
        out.append(Segment(len(out), round(start, 3), round(end, 3), s.text.strip(), float(s.avg_logprob)))
    return tuple(out)
