"""ytingest: YouTube channels → searchable, speaker-attributed transcripts in PostgreSQL + pgvector."""

from ytingest.config import Settings
from ytingest.engine import Engine
from ytingest.errors import (
    ConfigError,
    DiscoverError,
    DownloadError,
    EmbedError,
    StoreError,
    TranscribeError,
    YtingestError,
)
from ytingest.items import (
    AudioFile,
    EmbeddedTranscript,
    Failure,
    RunSummary,
    SearchHit,
    Segment,
    Transcript,
    VideoRef,
)
from ytingest.search import SearchQuery, VideoHits, group_by_video

__all__ = [
    "AudioFile",
    "ConfigError",
    "DiscoverError",
    "DownloadError",
    "EmbedError",
    "EmbeddedTranscript",
    "Engine",
    "Failure",
    "RunSummary",
    "SearchHit",
    "SearchQuery",
    "Segment",
    "Settings",
    "StoreError",
    "TranscribeError",
    "Transcript",
    "VideoHits",
    "VideoRef",
    "YtingestError",
    "group_by_video",
]
