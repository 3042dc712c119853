"""``SPEAKER_BACKEND=pyannote``: pyannote.audio's speaker-embedding model as a ``SpeakerEncoder``.

Optional extra (``pip install 'ytingest[pyannote]'``): pyannote.audio 4 needs torchaudio,
which pins an exact torch build, so it is not in the default install or CI. NOT exercised in
this repository's tests: the code follows pyannote.audio 4's documented ``Model`` /
``Inference`` API. ``PYANNOTE_MODEL`` is a hub id or a local folder; ``HF_TOKEN`` is read
from the environment by pyannote/huggingface_hub for gated hub models.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ytingest.config import Settings
from ytingest.errors import ConfigError

DEFAULT_MODEL = "pyannote/wespeaker-voxceleb-resnet34-LM"


class PyannoteEncoder:
    """Whole-clip embeddings from a pyannote.audio embedding model, L2-normalised."""

    @classmethod
    def from_settings(cls, s: Settings) -> PyannoteEncoder:
        """``SPEAKER_BACKEND=pyannote``: ``PYANNOTE_MODEL`` on ``SPEAKER_DEVICE``."""
        return cls(s.pyannote_model, device=s.speaker_device)

    def __init__(self, model: str | None = None, *, device: str = "auto") -> None:
        try:
            import torch
            from pyannote.audio import Inference, Model
        except ImportError:
            raise ConfigError("SPEAKER_BACKEND=pyannote needs: pip install 'ytingest[pyannote]'") from None
        self.name = f"pyannote:{model or DEFAULT_MODEL}"
        try:
            loaded: Any = Model.from_pretrained(model or DEFAULT_MODEL, token=os.environ.get("HF_TOKEN"))
        except Exception as exc:  # hub, auth and file errors all land here
            raise ConfigError(f"cannot load pyannote model {model or DEFAULT_MODEL!r}: {exc}") from None
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._torch = torch
        self._inference = Inference(loaded, window="whole", device=torch.device(device))
        self.dim = int(self._inference(self._as_input(np.zeros(16_000, dtype=np.float32))).shape[-1])

    def _as_input(self, clip: npt.NDArray[np.float32]) -> dict[str, Any]:
        return {
            "waveform": self._torch.from_numpy(np.ascontiguousarray(clip))[None, :],
            "sample_rate": 16_000,
        }

    def embed(self, clips: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(clips), self.dim), dtype=np.float32)
        for i, clip in enumerate(clips):
            padded = clip if len(clip) >= 8_000 else np.pad(clip, (0, 8_000 - len(clip)))
            out[i] = np.asarray(self._inference(self._as_input(padded)), dtype=np.float32).reshape(-1)
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        unit: npt.NDArray[np.float32] = (out / norms).astype(np.float32)
        return unit
