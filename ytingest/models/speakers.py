"""The seam where speaker identification plugs into the transcribe stage.

A tagger runs in the ASR executor right after transcription, on the audio that
is already decoded in memory, and returns the segments with ``speaker`` and
``speaker_score`` set (it may split a segment at a speaker change).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from ytingest.items import Segment


class SpeakerTagger(Protocol):
    """Labels each segment with the speaker who said it."""

    def tag(
        self, audio: npt.NDArray[np.float32], sample_rate: int, segments: tuple[Segment, ...]
    ) -> tuple[Segment, ...]: ...
