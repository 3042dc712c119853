"""The public ports: what ytingest asks of each backend, and the neutral types they answer with.

A backend is chosen by name (``ytingest/backends.py``: ``ASR_BACKEND``, ``EMBED_BACKEND``,
``SPEAKER_BACKEND``, and the ``ytingest.backends`` entry-point group for third parties). The
engine and the stages see only these protocols: a backend says what it can do by the optional
ports it also implements (``PreparingTranscriber``, ``ProcessDecoding``, ``ReportsProgress``,
``SpanEncoder``), never by its type.

Model methods are synchronous: the engine calls them in an executor thread.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ytingest.items import (
    AnonymousVoice,
    AudioFile,
    Checkpoint,
    EmbeddedTranscript,
    PreparedAudio,
    SearchHit,
    Segment,
    Unknown,
    VideoRef,
    Voiceprint,
)
from ytingest.search import SearchQuery

__all__ = [
    "AsrResult",
    "CheckpointStorage",
    "Downloader",
    "Embedder",
    "KnownVideos",
    "Ledger",
    "RunStore",
    "SearchIndex",
    "SegmentSink",
    "VoiceRegistry",
    "PreparingTranscriber",
    "ProcessDecoding",
    "ReportsProgress",
    "Source",
    "SpanEncoder",
    "SpeakerEncoder",
    "SpeakerTagger",
    "Tagged",
    "Transcriber",
    "VoiceNamer",
]


# ---- sources: listing a channel, downloading a video ------------------------------------------


class Source(Protocol):
    """Lists a channel (or any address) as the videos to ingest."""

    def discover(self, url: str) -> AsyncGenerator[VideoRef, None]: ...


@runtime_checkable
class KnownVideos(Protocol):
    """A source whose videos are known already (``ytingest retry``'s list): it reads no listing, so
    it spends nothing of the run's listing budget."""

    known_videos: list[VideoRef]


class Downloader(Protocol):
    """Fetches one video's audio into ``dest`` (a folder of its own)."""

    async def download(self, ref: VideoRef, dest: Path) -> AudioFile: ...


@runtime_checkable
class ReportsProgress(Protocol):
    """A downloader that reports bytes as they arrive: ``on_progress(video_id, bytes_so_far)``."""

    on_progress: Callable[[str, int], None] | None


# ---- speech recognition ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AsrResult:
    """What one transcription produced, plus the decoded audio for later in-memory stages."""

    segments: tuple[Segment, ...]
    audio_seconds: float
    language: str
    audio: npt.NDArray[np.float32]
    language_probability: float | None = None  # None: the language was given, not detected


@runtime_checkable
class Transcriber(Protocol):
    """Audio file in, segments out. ``name`` is stored with every row it transcribes."""

    name: str

    def transcribe(self, path: Path) -> AsrResult: ...


@runtime_checkable
class PreparingTranscriber(Protocol):
    """A transcriber whose decode step can run apart from (and ahead of) inference: the decode
    stage prepares windows (``PreparedAudio``, whose ``features`` belong to this backend) while
    the model transcribes earlier ones in batches."""

    name: str

    def prepare_windows(self, path: Path) -> Iterator[PreparedAudio]: ...
    def detect_language(self, item: PreparedAudio) -> tuple[str, float | None]: ...
    def transcribe_prepared(
        self,
        items: list[PreparedAudio],
        *,
        batch_size: int | None = None,
        languages: list[str | None] | None = None,
    ) -> list[AsrResult]: ...


@runtime_checkable
class ProcessDecoding(Protocol):
    """A preparing transcriber whose windows child processes can prepare (``DECODE_PROCESS``):
    ``prepare_options`` is the JSON the decoder child (``ytingest.models.decoder``) builds its
    ``prepare_windows`` from."""

    @property
    def prepare_options(self) -> dict[str, Any]: ...


# ---- speakers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tagged:
    """One window's segments with speakers set (split where the speaker changes inside one), and
    the anonymous voices whose keys some of them carry (named by the store, per channel)."""

    segments: tuple[Segment, ...]
    voices: tuple[AnonymousVoice, ...] = ()


@runtime_checkable
class SpeakerEncoder(Protocol):
    """A speaker-embedding model: 16 kHz mono clips in, one unit vector per clip out."""

    name: str
    dim: int

    def embed(self, clips: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]: ...


@runtime_checkable
class SpanEncoder(SpeakerEncoder, Protocol):
    """An encoder that embeds many spans of one stretch of audio at once (sharing its STFT)."""

    def embed_spans(
        self, audio: npt.NDArray[np.float32], spans: Sequence[tuple[int, int]]
    ) -> npt.NDArray[np.float32]: ...


class SpeakerTagger(Protocol):
    """Labels each segment with the speaker who said it. ``model``: the speaker encoder's name,
    which the store keeps with each channel's anonymous voices."""

    model: str

    def tag(
        self,
        audio: npt.NDArray[np.float32],
        sample_rate: int,
        segments: tuple[Segment, ...],
        *,
        window: int = 0,
    ) -> Tagged:
        """``window``: the window's number in its video, which makes the voices' keys unique."""
        ...


# ---- text embedding ----------------------------------------------------------------------------


@runtime_checkable
class Embedder(Protocol):
    """Texts in, one unit vector each. ``batch_size`` rows per forward pass (None: its own);
    ``name`` and ``dim`` are stored with the vectors."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]: ...


# ---- storage -----------------------------------------------------------------------------------

# names a channel's anonymous voices as they are stored: (the channel's known voices, the voices
# heard, same-voice cosine, the channel's highest label number) -> (key -> label, voices to save)
VoiceNamer = Callable[
    [Sequence[Unknown], Sequence[AnonymousVoice], float, int], tuple[dict[str, str], list[Unknown]]
]


class Ledger(Protocol):
    """A run's bookkeeping: which videos exist, which to skip, how each attempt ended."""

    async def register_channel(self, url: str) -> None: ...
    async def skip_reason(self, video_id: str) -> str | None: ...
    async def register_video(self, ref: VideoRef) -> None: ...
    async def count_attempt(self, video_id: str) -> None: ...
    async def record_metadata(
        self, video_id: str, *, upload_date: str | None, channel_name: str, channel_id: str
    ) -> None: ...
    async def mark_failed(
        self, video_id: str, stage: str, reason: str, *, permanent: bool = False
    ) -> None: ...


class SegmentSink(Protocol):
    """Where finished videos go: each video's rows replaced in one transaction, its status done."""

    async def store_transcripts(
        self,
        items: Sequence[EmbeddedTranscript],
        *,
        asr_model: str,
        embed_model: str,
        speaker_model: str = "",
        same_voice: float = 0.8,
        namer: VoiceNamer | None = None,
    ) -> None: ...


class RunStore(Ledger, SegmentSink, Protocol):
    """What a run writes to (``RunContext.ledger``): its bookkeeping and its rows, in one database."""


class SearchIndex(Protocol):
    """Reads the stored rows back: the best segments for a query (``vector``: its embedding, for
    the meaning side of a search), and the indexes built once rows are in."""

    async def search(
        self, query: SearchQuery, vector: npt.NDArray[np.float32] | None = None
    ) -> list[SearchHit]: ...
    async def ensure_search_index(self) -> bool: ...


class VoiceRegistry(Protocol):
    """Enrolled voices: every voiceprint kept, and a folder's prints saved (others of ``keep``'s
    names left alone)."""

    async def voiceprints(self) -> list[Voiceprint]: ...
    async def save_voiceprints(self, prints: Sequence[Voiceprint], *, keep: Sequence[str]) -> None: ...


@runtime_checkable
class CheckpointStorage(Protocol):
    """A long video's finished windows, kept until the video is stored, so a re-run resumes after
    them (``stages/resume.py``); a store without it makes every video start from its beginning."""

    async def save_checkpoints(
        self,
        items: Sequence[tuple[str, Checkpoint]],
        *,
        asr_model: str,
        embed_model: str,
        speaker_model: str = "",
    ) -> None: ...
    async def load_checkpoints(
        self, video_id: str, *, asr_model: str, embed_model: str, speaker_model: str = ""
    ) -> tuple[VideoRef | None, list[Checkpoint]]: ...
    async def delete_checkpoints(self, video_ids: Sequence[str]) -> None: ...
