"""``Tuning``: the knobs that change while a run goes on, in one typed place that ``/status`` reports."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from anyio import CapacityLimiter

from ytingest.config import Settings


@dataclass
class Tuning:
    """Changed by the autotuner and the CUDA out-of-memory handler; read by the stages live.

    ``asr_batch_size`` is how many speech chunks share one ASR model call; a CUDA out-of-memory
    error halves it and it climbs back once batches fit.

    Two embedding batch sizes, two jobs: ``batch_size`` (BATCH_SIZE) is how many rows the embed stage
    gathers across videos before it calls the model; ``encode_batch_size`` (ENCODE_BATCH_SIZE)
    is how many of those rows go through the model in one forward pass (what VRAM limits).
    """

    # IO_WORKERS: downloads at once. The autotuner sets ``total_tokens``: lowered, the downloads
    # running keep their slot and no new one starts until fewer run; raised, waiting ones start.
    downloads: CapacityLimiter
    batch_size: int
    encode_batch_size: int
    asr_batch_size: int = 8  # ASR_BATCH_SIZE: speech chunks per model call (halved on out-of-memory)
    asr_fits: int = 0  # ASR calls that fitted since the batch size last changed
    asr_batch_max: int | None = None  # what it climbs back to: the model's own size (set by the ASR stage)

    @classmethod
    def from_settings(cls, settings: Settings) -> Tuning:
        """The knobs as configured, before anything has tuned them."""
        return cls(
            CapacityLimiter(settings.io_workers),
            settings.batch_size,
            settings.encode_batch_size,
            settings.asr_batch_size,
        )

    @property
    def io_workers(self) -> int:
        return int(self.downloads.total_tokens)

    def to_dict(self) -> dict[str, Any]:
        return {
            "io_workers": self.io_workers,
            "batch_size": self.batch_size,
            "encode_batch_size": self.encode_batch_size,
            "asr_batch_size": self.asr_batch_size,
        }


def budget_io_cap(per_hour: float, download_s: float) -> int | None:
    """The IO_WORKERS a budget of ``per_hour`` starts keeps busy, by Little's law: L = λ·W with λ
    the budget's starts per second and W the mean download time, ``ceil(λ·W) + 1`` (one more waits
    for its turn). More only wait on the gate. None while W is not measured (or no budget)."""
    if per_hour <= 0 or download_s <= 0:
        return None
    return math.ceil(per_hour / 3600.0 * download_s) + 1
