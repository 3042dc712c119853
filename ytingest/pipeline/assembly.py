"""``WindowAssembly``: a long video is transcribed window by window; this puts it back together.

The decode stage hands on a video's windows in order; ASR and speaker workers may finish them in
any order (several workers, cross-file batches). Each window's segments arrive here (from the
speakers stage) already on the video's timeline; once every window up to the one marked ``last``
is in, the video's ``Transcript`` comes out, its segments in time order and numbered from 0. A
video that failed is dropped, and any of its windows still to come are ignored. When speaker
identification failed on any window, the whole video is stored without speaker labels (and with
the warning): labels are all or nothing per video, so a search by speaker never sees half a
video. A video resumed from its checkpoints (``stages/resume.py``) has its first windows put back
with ``restore``, as if the model had just done them. Loop thread only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from ytingest.items import (
    AnonymousVoice,
    AudioFile,
    Checkpoint,
    EmbeddedTranscript,
    Segment,
    Transcript,
    VideoRef,
    WindowResult,
)


@dataclass
class _Video:
    video: VideoRef | None  # None: only restored windows yet, none of this run
    pieces: dict[int, tuple[Segment, ...]] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)
    voices: dict[int, tuple[AnonymousVoice, ...]] = field(default_factory=dict)
    vectors: dict[int, npt.NDArray[np.float32]] = field(default_factory=dict)  # one row per segment
    transcribed: set[int] = field(default_factory=set)  # windows through the model
    last_transcribed: int | None = None  # the last window's index, once the model has done it
    last: int | None = None  # the index of the last window, once it has been seen
    language: str | None = None
    probability: float | None = None
    warning: str | None = None


class WindowAssembly:
    """The videos whose windows are in the model stage, and the ones that failed there."""

    def __init__(self) -> None:
        self._videos: dict[str, _Video] = {}
        self._failed: set[str] = set()

    def language(self, video_id: str) -> tuple[str, float | None] | None:
        """The language found on the video's first window (and its probability), once known."""
        v = self._videos.get(video_id)
        return (v.language, v.probability) if v is not None and v.language is not None else None

    def note_language(self, file: AudioFile, language: str, probability: float | None) -> None:
        """The language found on the video's first window: its later windows are transcribed in it
        (the transcribe stage notes it before the window goes on to the speakers stage)."""
        if file.video.id not in self._failed:
            v = self._video(file)
            v.language, v.probability = language, probability

    def transcribed(self, file: AudioFile, index: int, last: bool) -> bool:
        """The model is done with window ``index``; True once every window of the video is (its
        audio file is no longer needed: later stages hold the samples they use)."""
        if file.video.id in self._failed:
            return False
        v = self._video(file)
        v.transcribed.add(index)
        if last:
            v.last_transcribed = index
        return v.last_transcribed is not None and len(v.transcribed) == v.last_transcribed + 1

    def failed(self, video_id: str) -> bool:
        return video_id in self._failed

    def _video(self, file: AudioFile) -> _Video:
        v = self._videos.get(file.video.id)
        if v is None:
            v = self._videos[file.video.id] = _Video(file.video)
        elif v.video is None:
            v.video = file.video
        return v

    def restore(
        self, video_id: str, kept: list[Checkpoint], video: VideoRef | None = None
    ) -> EmbeddedTranscript | None:
        """Put back a video's checkpointed windows (0 to k-1, in order) before its later windows
        come: they count as transcribed and embedded. Returns the whole video when the last window
        is among them (``video`` names it then), else None."""
        if video_id in self._failed or not kept:
            return None
        v = self._videos.setdefault(video_id, _Video(video))
        v.video = v.video or video
        for c in kept:
            v.transcribed.add(c.result.index)
            if c.result.last:
                v.last_transcribed = c.result.index
        done = None
        for c in kept:
            done = self._add(video_id, c.result, c.vectors)
        return self._embedded(done) if done is not None else None

    def add(self, file: AudioFile, result: WindowResult) -> Transcript | None:
        """Record one window; the whole transcript once its last window is in, else None."""
        if file.video.id in self._failed:
            return None
        self._video(file)
        done = self._add(file.video.id, result, None)
        return done[0] if done is not None else None

    def add_embedded(
        self, file: AudioFile, result: WindowResult, vectors: npt.NDArray[np.float32]
    ) -> EmbeddedTranscript | None:
        """Record one window and its segments' embeddings (a row each, in its segments' order); the
        whole video, its rows ordered as its segments, once its last window is in, else None."""
        if file.video.id in self._failed:
            return None
        self._video(file)
        done = self._add(file.video.id, result, vectors)
        return self._embedded(done) if done is not None else None

    @staticmethod
    def _embedded(done: tuple[Transcript, list[int], _Video]) -> EmbeddedTranscript:
        transcript, order, v = done
        rows = np.concatenate([v.vectors[k] for k in sorted(v.vectors)])
        return EmbeddedTranscript(transcript, rows[order])

    def _add(
        self, vid: str, result: WindowResult, vectors: npt.NDArray[np.float32] | None
    ) -> tuple[Transcript, list[int], _Video] | None:
        if vid in self._failed:
            return None
        v = self._videos[vid]
        v.pieces[result.index] = result.segments
        v.seconds[result.index] = result.seconds
        v.voices[result.index] = result.voices
        if vectors is not None:
            v.vectors[result.index] = vectors
        if result.last:
            v.last = result.index
        if v.language is None or result.index == 0:
            v.language, v.probability = result.language, result.probability
        v.warning = v.warning or result.warning
        if v.last is None or len(v.pieces) < v.last + 1 or v.video is None:
            return None
        del self._videos[vid]
        flat = [s for k in sorted(v.pieces) for s in v.pieces[k]]
        order = sorted(range(len(flat)), key=lambda i: (flat[i].start, flat[i].end))
        ordered = [flat[i] for i in order]
        voices = tuple(x for k in sorted(v.voices) for x in v.voices[k])
        if v.warning is not None:  # speaker ID failed on a window: no labels for the whole video
            ordered = [replace(s, speaker=None, speaker_score=None, overlap=False) for s in ordered]
            voices = ()
        segments = tuple(replace(s, idx=i) for i, s in enumerate(ordered))
        seconds = sum(v.seconds.values())
        language = v.language or "en"
        transcript = Transcript(v.video, segments, seconds, language, v.probability, v.warning, voices)
        return transcript, order, v

    def drop(self, video_id: str) -> bool:
        """The video failed: forget its windows and ignore any still to come. False if it had
        already been dropped (so a failure is recorded once)."""
        self._videos.pop(video_id, None)
        if video_id in self._failed:
            return False
        self._failed.add(video_id)
        return True

    @property
    def in_flight(self) -> int:
        return len(self._videos)
