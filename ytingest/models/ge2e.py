"""GE2E speaker encoder (Resemblyzer's pretrained weights), run by our own small inference code.

The weights are Resemblyzer's ``pretrained.pt``, shipped unchanged inside this package as
``ytingest/models/weights/ge2e.pt`` (Apache-2.0, Copyright 2019 Resemble.AI; licence and sha256
in ``weights/LICENSE-resemblyzer``). The Resemblyzer package is not a dependency: its
webrtcvad needs a C compiler to install, and its ``__init__`` pulls in ``pkg_resources`` and
librosa/numba. The network is 3 LSTM layers over 40-band mel power frames (25 ms / 10 ms
at 16 kHz), a linear layer and ReLU; an utterance embedding is the L2-normalised mean of its
1.6 s partials.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ytingest.config import Settings
from ytingest.errors import ConfigError

SAMPLE_RATE = 16_000
N_FFT, HOP, N_MELS = 400, 160, 40
PARTIAL_FRAMES = 160  # 1.6 s
PARTIAL_STEP = 77  # frames between partials (Resemblyzer's rate of 1.3 partials per second)
TARGET_DBFS = -30.0
# partials per LSTM forward pass: the whole of a 300 s window (~700) at once held ~350 MB of
# layer outputs, now beside a running ASR batch (speakers are a stage of their own); 128 holds ~60
FORWARD_BATCH = 128
WEIGHTS = Path(__file__).parent / "weights" / "ge2e.pt"  # Resemblyzer's pretrained.pt


def weights_path() -> Path:
    """The GE2E weights shipped in this package (``ytingest/models/weights/ge2e.pt``)."""
    if not WEIGHTS.is_file():
        raise ConfigError(f"GE2E speaker weights missing from the package: {WEIGHTS} (reinstall ytingest)")
    return WEIGHTS


def mel_filterbank(
    sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS
) -> npt.NDArray[np.float32]:
    """Slaney-style triangular mel filters with area normalisation, shape (n_mels, n_fft // 2 + 1)."""
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0

    def to_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lin = f / f_sp
        return np.where(
            f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, lin
        )

    def to_hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    edges = to_hz(np.linspace(to_mel(np.array(0.0)), to_mel(np.array(sr / 2.0)), n_mels + 2))
    freqs = np.linspace(0, sr / 2.0, n_fft // 2 + 1)
    ramps = edges[:, None] - freqs[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


_MEL = mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def mel_frames(wav: npt.NDArray[np.float32], *, block: int = 4096) -> npt.NDArray[np.float32]:
    """Mel power spectrogram (frames, 40): centred frames, zero padding, like librosa's defaults;
    ``block`` frames at a time, so a long window's STFT holds little memory."""
    padded = np.pad(wav, N_FFT // 2)
    n = 1 + (len(padded) - N_FFT) // HOP
    out = np.empty((n, N_MELS), dtype=np.float32)
    for k in range(0, n, block):
        idx = np.arange(N_FFT)[None, :] + HOP * np.arange(k, min(n, k + block))[:, None]
        spectrum = np.abs(np.fft.rfft(padded[idx] * _WINDOW, axis=1)) ** 2
        out[k : k + len(idx)] = spectrum @ _MEL.T
    return out


def normalise_volume(wav: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Raise (never lower) the level to -30 dBFS, as the encoder was trained."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0
    if rms <= 1e-9:
        return wav
    gain = 10 ** ((TARGET_DBFS - 20 * np.log10(rms)) / 20)
    return (wav * gain).astype(np.float32) if gain > 1 else wav


class Ge2eEncoder:
    """``SpeakerEncoder`` on Resemblyzer's GE2E weights: 256-d unit vectors."""

    name = "resemblyzer-ge2e"
    dim = 256

    def __init__(self, device: str = "cpu", weights: Path | None = None) -> None:
        import torch

        self._torch = torch
        self._device = torch.device(
            "cuda"
            if device == "auto" and torch.cuda.is_available()
            else ("cpu" if device == "auto" else device)
        )
        self._lstm = torch.nn.LSTM(N_MELS, 256, 3, batch_first=True)
        self._linear = torch.nn.Linear(256, 256)
        state = torch.load(weights or weights_path(), map_location="cpu", weights_only=True)["model_state"]
        self._lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self._linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        self._lstm.to(self._device).eval()
        self._linear.to(self._device).eval()
        self._lock = threading.Lock()  # one forward pass at a time (ASR_WORKERS may share the model)

    @classmethod
    def from_settings(cls, s: Settings) -> Ge2eEncoder:
        """``SPEAKER_BACKEND=resemblyzer`` on ``SPEAKER_DEVICE``."""
        return cls(s.speaker_device)

    def embed(self, clips: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        """One unit vector per clip (16 kHz mono); all partials of all clips in one batch."""
        return self._embed_mels(
            [mel_frames(normalise_volume(np.asarray(c, dtype=np.float32))) for c in clips]
        )

    def embed_spans(
        self, audio: npt.NDArray[np.float32], spans: Sequence[tuple[int, int]]
    ) -> npt.NDArray[np.float32]:
        """One unit vector per ``[start, end)`` sample span of ``audio``, as ``embed`` of those clips
        would give, but with one STFT for the whole audio instead of one per clip: the speaker
        windows overlap three times over (1.2 s every 0.4 s), and the per-clip STFT was half of
        the tagger's time. Each span takes the frames centred in it, scaled as ``normalise_volume``
        would have scaled its samples (power goes with the gain squared); only its edge frames
        differ, hearing the real neighbouring samples instead of zero padding."""
        if not spans:
            return np.zeros((0, self.dim), dtype=np.float32)
        mel = mel_frames(np.asarray(audio, dtype=np.float32))
        energy = np.concatenate(([0.0], np.cumsum(np.square(audio, dtype=np.float64))))
        mels = []
        for start, end in spans:
            end = min(max(end, 1), len(audio))  # the spans' float seconds may run a sample past the end
            start = min(max(start, 0), end - 1)
            first = min(len(mel) - 1, round(start / HOP))
            frames = mel[first : first + 1 + (end - start) // HOP]
            rms = np.sqrt((energy[end] - energy[start]) / max(1, end - start))
            gain = 10 ** ((TARGET_DBFS - 20 * np.log10(rms)) / 20) if rms > 1e-9 else 1.0
            mels.append(frames * np.float32(gain * gain) if gain > 1 else frames)
        return self._embed_mels(mels)

    def _embed_mels(self, mels: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        """One unit vector per clip's mel frames; all partials of all clips in one forward pass."""
        if not mels:
            return np.zeros((0, self.dim), dtype=np.float32)
        partials: list[npt.NDArray[np.float32]] = []
        owner: list[int] = []
        for i, mel in enumerate(mels):
            starts = range(0, max(1, len(mel) - PARTIAL_FRAMES + PARTIAL_STEP), PARTIAL_STEP)
            for s in starts:
                part = mel[s : s + PARTIAL_FRAMES]
                if len(part) < PARTIAL_FRAMES and s > 0 and len(part) < 0.75 * PARTIAL_FRAMES:
                    continue  # a short tail is covered by the previous partial
                partials.append(np.pad(part, ((0, PARTIAL_FRAMES - len(part)), (0, 0))))
                owner.append(i)
        vectors = self._forward(np.stack(partials))
        out = np.zeros((len(mels), self.dim), dtype=np.float32)
        np.add.at(out, np.asarray(owner), vectors)
        return _unit(out)

    def _forward(self, mels: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Unit vectors of the partials, FORWARD_BATCH at a time (bounded memory)."""
        torch: Any = self._torch
        out = []
        with self._lock, torch.inference_mode():
            for k in range(0, len(mels), FORWARD_BATCH):
                x = torch.from_numpy(mels[k : k + FORWARD_BATCH]).to(self._device)
                _, (hidden, _) = self._lstm(x)
                out.append(torch.relu(self._linear(hidden[-1])).cpu().numpy().astype(np.float32))
        return _unit(np.concatenate(out))


def _unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(
        np.float32
    )
    return out
