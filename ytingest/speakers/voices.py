"""The ``voices/`` folder: which speakers, which clips, their hashes, and their voiceprints.

Layout: ``voices/NAME/*.{wav,mp3,...}`` (a folder of clips per speaker) or ``voices/NAME.mp3``
(one clip, named after the speaker). Hidden files and non-audio files are ignored; a link
that leads outside the folder is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ytingest.errors import ConfigError
from ytingest.items import Voiceprint as Voiceprint  # defined with the other items: db returns it
from ytingest.models import file_sha256
from ytingest.ports import SpeakerEncoder
from ytingest.speakers.clustering import unit

AUDIO_SUFFIXES = frozenset(
    {".wav", ".mp3", ".m4a", ".flac", ".ogg", ".opus", ".webm", ".aac", ".mp4", ".mka"}
)
MIN_SPEECH_S = 0.5
UNKNOWN_LABEL = re.compile(r"unknown-[0-9]+")  # the store's anonymous labels: not a name to enrol


@dataclass(frozen=True, slots=True)
class VoiceSource:
    """One speaker's reference clips (paths relative to the voices folder) and their SHA-256."""

    name: str
    files: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ClipError:
    """A reference clip that could not be used, and why."""

    path: str
    reason: str


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root)


def scan(voices_dir: Path) -> list[VoiceSource]:
    """Every speaker in ``voices_dir`` with its clips' hashes, sorted by name."""
    root = voices_dir.expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"voices folder not found: {voices_dir}")
    groups: dict[str, list[Path]] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not _inside(root, entry):
            continue
        if entry.is_dir():
            clips = [
                p
                for p in sorted(entry.iterdir())
                if p.is_file()
                and not p.name.startswith(".")
                and p.suffix.lower() in AUDIO_SUFFIXES
                and _inside(root, p)
            ]
            if clips:
                groups.setdefault(entry.name, []).extend(clips)
        elif entry.is_file() and entry.suffix.lower() in AUDIO_SUFFIXES:
            groups.setdefault(entry.stem, []).append(entry)
    for name in groups:
        if name.startswith("?") or UNKNOWN_LABEL.fullmatch(name):
            raise ConfigError(
                f"voices folder: {name!r} looks like an anonymous label; give the voice a real name"
            )
    return [
        VoiceSource(name, {p.relative_to(root).as_posix(): file_sha256(p) for p in paths})
        for name, paths in sorted(groups.items())
    ]


def speech_of(path: Path) -> npt.NDArray[np.float32]:
    """A clip decoded to 16 kHz mono with only its speech kept (Silero VAD from faster-whisper)."""
    from faster_whisper import decode_audio
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    try:
        audio = np.asarray(decode_audio(str(path), sampling_rate=16_000), dtype=np.float32)
    except Exception as exc:  # PyAV raises many types for corrupt or non-audio files
        raise ValueError(f"cannot decode audio ({type(exc).__name__})") from None
    if audio.size == 0:
        raise ValueError("cannot decode audio (no samples)")
    spans = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=500, speech_pad_ms=100))
    speech = np.concatenate([audio[s["start"] : s["end"]] for s in spans]) if spans else audio[:0]
    if len(speech) < MIN_SPEECH_S * 16_000:
        raise ValueError("no speech found")
    return speech


def embed_voice(
    encoder: SpeakerEncoder, voices_dir: Path, source: VoiceSource
) -> tuple[Voiceprint | None, list[ClipError]]:
    """Embed each clip; the voiceprint is the normalised mean of the clips that worked. Executor only."""
    root = voices_dir.expanduser().resolve()
    vectors, used, errors = [], {}, []
    for rel, digest in source.files.items():
        try:
            vectors.append(encoder.embed([speech_of(root / rel)])[0])
            used[rel] = digest
        except ValueError as exc:
            errors.append(ClipError(rel, str(exc)))
    if not vectors:
        return None, errors
    mean = unit(np.mean(np.stack(vectors), axis=0)[None, :])[0]
    # only the clips that worked are recorded, so a broken clip is retried (and reported) next run
    return Voiceprint(source.name, mean, encoder.name, used), errors
