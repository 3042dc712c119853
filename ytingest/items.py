"""Frozen, typed items that travel on the queues between stages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000  # what the decoder produces and the models read: 16 kHz mono float32

# yt-dlp's live_status of a video that cannot be downloaded yet -> the status it is recorded with
WAITING = {"is_upcoming": "upcoming", "is_live": "live"}


@dataclass(frozen=True, slots=True)
class VideoRef:
    """A video found by discovery, before anything is downloaded."""

    id: str
    url: str
    title: str = ""
    duration: float | None = None
    channel: str = ""
    webpage_url: str = ""
    upload_date: str | None = None  # ISO YYYY-MM-DD (UTC), when the listing gives one
    live_status: str | None = None  # yt-dlp's: is_upcoming, is_live, was_live, not_live, post_live
    channel_name: str = ""  # the uploader's channel name and id, when the listing gives them
    channel_id: str = ""
    # the URL to download when it holds a credential (``user:pass@``) that ``url`` (stored, logged,
    # shown: ``sourcetext.public_url``) leaves out; known only to the run that listed it
    fetch_url: str = field(default="", repr=False, compare=False)

    @property
    def download_url(self) -> str:
        """What yt-dlp is given: ``fetch_url`` when the listing had a credential, else ``url``."""
        return self.fetch_url or self.url


@dataclass(frozen=True, slots=True)
class AudioFile:
    """A downloaded audio file on disk."""

    video: VideoRef
    path: Path
    size: int
    upload_date: str | None = None  # from the download's own metadata (ISO), when yt-dlp had it
    channel_name: str = ""  # the uploader's channel name and id, from the same metadata
    channel_id: str = ""
    # the format yt-dlp took when it carries video ("18 (avc1.42001E)"): its audio-only formats
    # needed a PO token (SABR) and ``bestaudio/best`` fell back to a muxed one; "" for audio-only
    video_format: str = ""
    # the ``.part`` yt-dlp is still writing (``path``: where it will end up): the decode stage reads
    # it as it grows (``models/growing.py``); None: the file is whole
    growing: Path | None = None


@dataclass(frozen=True, slots=True)
class PreparedAudio:
    """One window of a video's decoded audio and, when batching, its VAD speech chunks and their
    log-mel features. A short file is one window; a long one is cut at silences into windows
    of about DECODE_WINDOW_S, so memory per video in flight does not grow with its length.

    ``clips`` and ``chunks`` are in the window's own time; ``offset`` places the window on the
    video's timeline (seconds), ``index`` counts windows from 0 and ``last`` marks the final one.
    """

    audio: npt.NDArray[np.float32] = field(repr=False)
    clips: tuple[dict[str, int], ...] = ()  # VAD speech regions, in samples of ``audio``
    chunks: tuple[dict[str, Any], ...] = ()  # offset/duration in VAD-collected time, per chunk
    features: npt.NDArray[np.float32] | None = field(default=None, repr=False)  # (chunks, n_mels, 3000)
    offset: float = 0.0  # where the window starts in the video, in seconds
    index: int = 0  # the window's number within its video
    last: bool = True  # no window of this video follows
    total: float | None = None  # the whole video's length in seconds, when the container says

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def end(self) -> float:
        """Where the window ends on the video's timeline, in seconds."""
        return self.offset + self.seconds


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a video's decoding starts again: the first window not yet checkpointed (``index``)
    and where it begins on the video's timeline (``offset``, seconds). ``complete``: every window
    is checkpointed, so the decode stage decodes nothing of it and hands nothing on (the
    checkpoints' owner puts the video together and stores it)."""

    index: int
    offset: float
    complete: bool = False


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """A downloaded file and one window of its decoded audio (None: the transcriber decodes the
    whole file by itself). The decode stage hands on a video's windows in order."""

    file: AudioFile
    prepared: PreparedAudio | None = None


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a segment and where it was said (seconds, same timeline as its segment)."""

    start: float
    end: float
    text: str  # as the ASR wrote it, with its leading space


@dataclass(frozen=True, slots=True)
class Segment:
    """One ASR segment, or a piece of one split at a speaker change.

    ``speaker`` is set by speaker identification: an enrolled name, a channel's ``unknown-N``, or
    (between the speaker stage and the store) the key of an ``AnonymousVoice`` of its transcript.
    ``words`` (used to split at speaker changes) are not stored.
    """

    idx: int
    start: float
    end: float
    text: str
    avg_logprob: float = 0.0
    speaker: str | None = None
    speaker_score: float | None = None
    overlap: bool = False  # another voice was heard over the speaker's in this piece
    words: tuple[Word, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class AnonymousVoice:
    """A voice that no enrolled speaker claimed, found in one window of a video. Its segments carry
    ``key`` as their speaker until the store gives it the channel's ``unknown-N`` (the same voice
    met before in the channel, by cosine to its running mean, or a new number)."""

    key: str  # "?<window>.<cluster>", unique within one transcript
    vector: npt.NDArray[np.float32] = field(repr=False)  # unit-length centroid of its windows
    weight: float  # seconds of speech behind ``vector``


@dataclass(frozen=True, slots=True)
class Transcript:
    """All segments of one video, in order."""

    video: VideoRef
    segments: tuple[Segment, ...]
    audio_seconds: float
    language: str = "en"
    language_probability: float | None = None  # confidence in ``language`` (None: set, not detected)
    warning: str | None = None  # stored, but with something missing (e.g. speaker labels), and why
    voices: tuple[AnonymousVoice, ...] = ()  # the anonymous voices its segments' speaker keys name


@dataclass(frozen=True, slots=True)
class TranscribedWindow:
    """One window through the model, on its way to the speakers stage: its segments in the window's
    own time (with their words, where the speakers stage splits turns), the window's audio (what
    the speaker encoder hears) and where the window sits in its video."""

    file: AudioFile
    segments: tuple[Segment, ...]
    audio: npt.NDArray[np.float32] = field(repr=False)  # empty when no speaker stage will hear it
    seconds: float  # the window's length
    language: str = "en"
    probability: float | None = None  # of ``language``, detected on the video's first window
    offset: float = 0.0  # where the window starts in the video, in seconds
    index: int = 0
    last: bool = True


@dataclass(frozen=True, slots=True)
class WindowResult:
    """What the model and the speakers stage made of one window, its segments already on the
    video's timeline."""

    index: int
    last: bool
    segments: tuple[Segment, ...]
    seconds: float
    language: str
    probability: float | None = None
    warning: str | None = None
    voices: tuple[AnonymousVoice, ...] = ()  # the anonymous voices its segments' keys name


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One finished window of a video kept in the database (``db/checkpoints.py``): what the model,
    the speakers stage and the embedder made of it, so a later run resumes after it."""

    result: WindowResult
    vectors: npt.NDArray[np.float32] = field(repr=False)  # one embedding row per segment, in order


@dataclass(frozen=True, slots=True)
class LabelledWindow:
    """One window of a video with its speakers labelled: what the embed stage encodes, a window at
    a time, before the video is put back together (``pipeline/assembly.py``) and stored."""

    file: AudioFile
    result: WindowResult


@dataclass(frozen=True, slots=True)
class EmbeddedTranscript:
    """A transcript with one embedding row per segment, ready to store."""

    transcript: Transcript
    vectors: npt.NDArray[np.float32] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a video was not stored."""

    video_id: str
    stage: str
    reason: str


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What one ``Engine.stream`` call did. ``to_dict`` is the CLI's ``--json`` contract."""

    done: int
    failed: int
    skipped: int
    segments: int
    audio_seconds: float  # of the videos stored (whole videos, checkpointed windows included)
    wall_seconds: float
    failures: tuple[Failure, ...] = ()
    stopped_early: bool = False
    asr_redecoded_chunks: int = 0  # speech chunks whose uncovered tails the model decoded again
    halted: str = ""  # why the run stopped taking videos by itself (a bot check that persists), with advice
    audio_seconds_transcribed: float = 0.0  # what the model did in this run (resumed windows: not again)

    def to_dict(self) -> dict[str, object]:
        return {
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "segments": self.segments,
            "audio_seconds": round(self.audio_seconds, 3),
            "audio_seconds_transcribed": round(self.audio_seconds_transcribed, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "failures": [
                {"video_id": f.video_id, "stage": f.stage, "reason": f.reason} for f in self.failures
            ],
            "stopped_early": self.stopped_early,
            "asr_redecoded_chunks": self.asr_redecoded_chunks,
            "halted": self.halted,
        }


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: a segment, its neighbours for context, and where to hear it.

    ``score`` is the mode's ranking score: cosine similarity (semantic), ``ts_rank_cd`` (keyword),
    or the reciprocal-rank fusion of both scaled so 1.0 = first in both lists (hybrid).
    """

    video_id: str
    title: str
    url: str  # opens the video at ``start`` (YouTube ``t=``, else a media fragment)
    start: float
    end: float
    text: str
    speaker: str | None
    score: float
    idx: int = 0
    media_url: str = ""  # the audio/video file itself (for an HTML5 player on non-YouTube sources)
    channel: str | None = None
    upload_date: str | None = None  # ISO date, when the source gave one
    before: str = ""  # the previous segment's text ("" at the start)
    after: str = ""  # the next segment's text ("" at the end)
    language: str | None = None  # the video's, as the ASR gave it
    language_probability: float | None = None  # of the detected ``language`` (None: set, not detected)

    def to_dict(self) -> dict[str, object]:
        return {
            "video_id": self.video_id,
            "idx": self.idx,
            "title": self.title,
            "url": self.url,
            "media_url": self.media_url,
            "channel": self.channel,
            "upload_date": self.upload_date,
            "language": self.language,
            "language_probability": (
                None if self.language_probability is None else round(self.language_probability, 4)
            ),
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "before": self.before,
            "after": self.after,
            "speaker": self.speaker,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True, slots=True)
class Voiceprint:
    """A speaker's enrolled voice: the normalised mean of its clips' embeddings."""

    name: str
    vector: npt.NDArray[np.float32] = field(repr=False)
    model: str
    files: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Unknown:
    """An anonymous speaker, kept across videos: a label and the running mean of its voice."""

    label: str
    vector: npt.NDArray[np.float32]
    weight: float
