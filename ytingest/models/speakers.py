"""The seam where speaker identification plugs into the transcribe stage.

A tagger runs in the ASR executor right after transcription, on the audio that
is already decoded in memory, and returns the segments with ``speaker`` and
``speaker_score`` set (it may split a segment at a speaker change).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ytingest.errors import ConfigError
from ytingest.items import AnonymousVoice, Segment


@dataclass(frozen=True, slots=True)
class Tagged:
    """One window's segments with speakers set (split where the speaker changes inside one), and
    the anonymous voices whose keys some of them carry (named by the store, per channel)."""

    segments: tuple[Segment, ...]
    voices: tuple[AnonymousVoice, ...] = ()


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


class SpeakerEncoder(Protocol):
    """A speaker-embedding model: 16 kHz mono clips in, one unit vector per clip out.

    Synchronous, executor only. A new backend is one module with a class like this,
    registered in ``load_encoder``.
    """

    name: str
    dim: int

    def embed(self, clips: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]: ...


@runtime_checkable
class SpanEncoder(SpeakerEncoder, Protocol):
    """An encoder that embeds many spans of one stretch of audio at once (sharing its STFT)."""

    def embed_spans(
        self, audio: npt.NDArray[np.float32], spans: Sequence[tuple[int, int]]
    ) -> npt.NDArray[np.float32]: ...


BACKENDS = ("resemblyzer", "pyannote")


def load_encoder(backend: str, *, device: str = "auto", model: str | None = None) -> SpeakerEncoder:
    """Build the encoder named by ``SPEAKER_BACKEND``. Executor only (loads weights)."""
    if backend == "resemblyzer":
        from ytingest.models.ge2e import Ge2eEncoder

        return Ge2eEncoder(device)
    if backend == "pyannote":
        from ytingest.models.pyannote_encoder import PyannoteEncoder

        return PyannoteEncoder(model, device=device)
    raise ConfigError(f"unknown speaker backend {backend!r} (choose from {', '.join(BACKENDS)})")
