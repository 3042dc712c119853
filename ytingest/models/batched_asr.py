"""Cross-file batched Whisper: VAD speech chunks of several files share one encoder/decoder batch.

faster-whisper's ``BatchedInferencePipeline`` batches the chunks of one file. Here the same
pieces are split in two: ``prepare_audio`` (VAD → ``collect_chunks`` → log-mel features; no model
inference, so it runs in the decoder process) and ``ChunkBatcher.run`` (``BatchedInferencePipeline.
forward`` on batches that mix chunks of many files), then each file's segments are mapped back to
its own timeline with ``restore_speech_timestamps``. Executor only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ytingest.errors import TranscribeError
from ytingest.items import SAMPLE_RATE, PreparedAudio, Segment, Word

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.feature_extractor import FeatureExtractor
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import TranscriptionOptions

CHUNK_S = 30  # Whisper's window; VAD regions are merged into chunks of at most this length
# a chunk whose batched text ends more than this much (and this share) before the chunk's speech
# does has its tail decoded again: one batched pass cannot seek past an early end of text
UNCOVERED_S, UNCOVERED_SHARE = 3.0, 0.2
REDECODE_ROUNDS = 3  # a tail decoded again may stop early too: its own tail goes again, this often
# greedy re-decodes of crosstalk fall into loops ("yeah, yeah, ..." to the end of the chunk on the
# real meeting tst00) where faster-whisper's sequential fallback samples at T > 0 (random output);
# a mild repetition penalty keeps them greedy and deterministic, and a segment that still compresses
# like a loop (COMPRESSION above the first pass's threshold) is dropped
REDECODE_REPETITION_PENALTY = 1.1


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

    def __init__(
        self, model: WhisperModel, *, batch_size: int = 8, beam_size: int = 1, word_timestamps: bool = False
    ) -> None:
        """``word_timestamps``: each segment also gets its words' times (cross-attention alignment,
        one more decoder pass per batch), which the speaker stage splits turns at."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import (
            BatchedInferencePipeline,
            TranscriptionOptions,
            get_suppressed_tokens,
        )

        self.batch_size = batch_size
        self.beam_size = beam_size
        self.redone = 0  # chunks whose uncovered tails were decoded again (see ``_cover``)
        self._pipe = BatchedInferencePipeline(model)
        self._model = model
        multilingual = bool(model.model.is_multilingual)
        self._language = None if multilingual else "en"
        self._per_language: dict[str, tuple[Tokenizer, TranscriptionOptions]] = {}
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
            word_timestamps=word_timestamps,
            prepend_punctuations="\"'“¿([{-",
            append_punctuations="\"'.。,，!！?？:：”)]}、",
            multilingual=multilingual,
            max_new_tokens=None,
            clip_timestamps="0",
            hallucination_silence_threshold=None,
            hotwords=None,
        )

    def run(
        self,
        items: Sequence[PreparedAudio],
        *,
        batch_size: int | None = None,
        languages: Sequence[str | None] | None = None,
    ) -> list[tuple[Segment, ...]]:
        """Segments of every item, in its own time, in order; chunks of all items share batches of
        ``batch_size`` (default: the batcher's). ``languages``, per item, for a multilingual model:
        None lets the model detect the language of each chunk; batches never mix languages.
        Greedy (temperature 0) throughout, so a chunk's text does not depend on its batch company."""
        size = max(1, batch_size or self.batch_size)
        langs: list[str | None] = list(languages) if languages is not None else [None] * len(items)
        if self._language is not None:  # an English-only model
            langs = [self._language] * len(items)
        outputs: list[list[list[dict[str, Any]]]] = [[[] for _ in p.chunks] for p in items]
        for language in dict.fromkeys(langs):
            refs = [(i, j) for i, p in enumerate(items) if langs[i] == language for j in range(len(p.chunks))]
            tokenizer, options = self._decoding(language)
            for k in range(0, len(refs), size):
                part = refs[k : k + size]
                feats = np.stack([_features(items[i])[j] for i, j in part])
                results = self._forward(feats, [items[i].chunks[j] for i, j in part], tokenizer, options)
                for (i, j), result in zip(part, results, strict=True):
                    outputs[i][j] = result
            self._cover(items, outputs, refs, size, tokenizer, options)
        return [_segments(p, out) for p, out in zip(items, outputs, strict=True)]

    def _decoding(self, language: str | None) -> tuple[Tokenizer, TranscriptionOptions]:
        """The tokenizer and options for one language (None: detected per chunk)."""
        if language is None or language == self._language:
            return self._tokenizer, self._options
        if language not in self._per_language:
            from faster_whisper.tokenizer import Tokenizer

            tokenizer = Tokenizer(self._model.hf_tokenizer, True, task="transcribe", language=language)
            self._per_language[language] = (tokenizer, replace(self._options, multilingual=False))
        return self._per_language[language]

    def _forward(
        self,
        feats: npt.NDArray[np.float32],
        meta: list[dict[str, Any]],
        tokenizer: Tokenizer,
        options: TranscriptionOptions,
    ) -> list[list[dict[str, Any]]]:
        """One batched model call: each chunk's segments on its speech timeline."""
        self._pipe.last_speech_timestamp = 0.0  # a heuristic's state: chunks here are unrelated
        results: list[list[dict[str, Any]]] = self._pipe.forward(feats, tokenizer, meta, options)
        return results

    def _cover(
        self,
        items: Sequence[PreparedAudio],
        outputs: list[list[list[dict[str, Any]]]],
        refs: list[tuple[int, int]],
        size: int,
        tokenizer: Tokenizer,
        options: TranscriptionOptions,
    ) -> None:
        """Decode again what the batched pass left out, in place. A batched pass is one decode of up
        to 30 s: when the model emits end-of-text early (crosstalk, music, a hard accent), the rest
        of the chunk is lost, where sequential decoding would seek past that point and go on. So the
        uncovered tails of all such chunks go through the model again together, batched and greedy
        like the first pass (with a repetition penalty), up to REDECODE_ROUNDS times while they make
        progress."""
        pending = [(i, j) for i, j in refs if _uncovered(items[i].chunks[j], outputs[i][j], first=True)]
        self.redone += len(pending)
        options = replace(options, repetition_penalty=REDECODE_REPETITION_PENALTY)
        loop = options.compression_ratio_threshold or float("inf")
        for _ in range(REDECODE_ROUNDS):
            if not pending:
                return
            tails = [(i, j, _covered(items[i].chunks[j], outputs[i][j])) for i, j in pending]
            pending = []
            for k in range(0, len(tails), size):
                part = tails[k : k + size]
                feats = np.stack([self._tail_features(items[i], items[i].chunks[j], t) for i, j, t in part])
                meta = [_tail_meta(items[i].chunks[j], t) for i, j, t in part]
                results = self._forward(feats, meta, tokenizer, options)
                for (i, j, was), result in zip(part, results, strict=True):
                    said = [s for s in result if s["text"].strip() and s["compression_ratio"] <= loop]
                    if not said:
                        continue  # nothing more in there: the model heard only noise
                    outputs[i][j] = outputs[i][j] + said
                    chunk = items[i].chunks[j]
                    if _covered(chunk, outputs[i][j]) > was and _uncovered(chunk, outputs[i][j]):
                        pending.append((i, j))

    def _tail_features(
        self, item: PreparedAudio, chunk: dict[str, Any], covered: float
    ) -> npt.NDArray[np.float32]:
        """Log-mel features of a chunk's speech after ``covered`` seconds (as ``prepare_audio``)."""
        from faster_whisper.audio import pad_or_trim

        speech = np.concatenate([item.audio[s["start"] : s["end"]] for s in chunk["segments"]])
        tail = speech[int(covered * SAMPLE_RATE) :]
        features: npt.NDArray[np.float32] = pad_or_trim(self._model.feature_extractor(tail)[..., :-1]).astype(
            np.float32
        )
        return features


def _covered(chunk: dict[str, Any], result: list[dict[str, Any]]) -> float:
    """Seconds from the chunk's start to the end of its last segment."""
    return max((float(s["end"]) - float(chunk["offset"]) for s in result), default=0.0)


def _uncovered(chunk: dict[str, Any], result: list[dict[str, Any]], *, first: bool = False) -> bool:
    """Whether the text stops well before the chunk's speech does (``first``: the batched pass,
    which must also miss UNCOVERED_SHARE of the chunk; a re-decode's tail only UNCOVERED_S)."""
    duration = float(chunk["duration"])
    gap = duration - _covered(chunk, result)
    return gap > (max(UNCOVERED_S, UNCOVERED_SHARE * duration) if first else UNCOVERED_S)


def _tail_meta(chunk: dict[str, Any], covered: float) -> dict[str, Any]:
    """The chunk's metadata for its tail: the same speech timeline, starting ``covered`` later."""
    covered = int(covered * SAMPLE_RATE) / SAMPLE_RATE  # as the tail's audio is cut
    return {
        "offset": float(chunk["offset"]) + covered,
        "duration": float(chunk["duration"]) - covered,
        "segments": chunk["segments"],
    }


def _features(item: PreparedAudio) -> npt.NDArray[np.float32]:
    assert item.features is not None
    return item.features


def _segments(item: PreparedAudio, chunks: list[list[dict[str, Any]]]) -> tuple[Segment, ...]:
    """One file's chunk outputs → its timeline (VAD gaps put back), clamped to the audio."""
    from faster_whisper.transcribe import Segment as FwSegment
    from faster_whisper.transcribe import Word as FwWord
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
            words=[FwWord(w["start"], w["end"], w["word"], w["probability"]) for w in s["words"]]
            if s.get("words")
            else None,
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
        text, words = s.text.strip(), words_of(s.words, end_of_audio)
        out.append(Segment(len(out), round(start, 3), round(end, 3), text, float(s.avg_logprob), words=words))
    return tuple(out)


def words_of(words: Sequence[Any] | None, end_of_audio: float) -> tuple[Word, ...]:
    """faster-whisper's words as ours, clamped to the audio (empty when none were asked for)."""
    out = []
    for w in words or ():
        start = min(max(float(w.start), 0.0), end_of_audio)
        out.append(Word(round(start, 3), round(min(max(float(w.end), start), end_of_audio), 3), w.word))
    return tuple(out)
