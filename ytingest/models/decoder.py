"""The decoder child processes.

- ``python -m ytingest.models.decoder`` runs ``iter_windows`` (decode, and VAD + log-mel features
  unless the options say ``batching: off``, a window at a time) for the paths it is sent. The
  engine's side is ``ytingest.stages.decoder_process.DecoderProcess``, which explains the protocol
  and why a process.
- ``load_extractor`` and ``speech_features`` are what the decode pool's worker processes run on
  one window's samples (``ytingest.stages.decode_pool``).

Synchronous; nothing here runs in the engine's process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ytingest.errors import TranscribeError
from ytingest.items import PreparedAudio, ResumePoint
from ytingest.malloc import map_large_blocks
from ytingest.models.batched_asr import prepare_audio
from ytingest.models.growing import STALL_S, DownloadEnded
from ytingest.models.windows import iter_windows

DEFAULT_WINDOW_S = 300.0
_extractor: Any = None  # a pool worker's feature extractor (``load_extractor``)

SpeechFeatures = tuple[tuple[dict[str, int], ...], tuple[dict[str, Any], ...], "np.ndarray[Any, Any] | None"]


def load_extractor(feature_options: dict[str, Any]) -> None:
    """A pool worker's initializer: build the feature extractor once (imports faster-whisper)."""
    global _extractor
    from faster_whisper.feature_extractor import FeatureExtractor

    map_large_blocks()  # a worker process of our own (ytingest/malloc.py)

    _extractor = FeatureExtractor(**feature_options)


def speech_features(audio: np.ndarray[Any, Any]) -> SpeechFeatures:
    """VAD speech clips, their 30 s chunks and the chunks' log-mel features of one window's samples,
    as ``prepare_audio`` makes them. TranscribeError when VAD or the features fail."""
    try:
        prepared = prepare_audio(_extractor, audio)
    except Exception as exc:
        raise TranscribeError(f"VAD/features failed: {type(exc).__name__}: {exc}") from None
    return prepared.clips, prepared.chunks, prepared.features


def _serve(inp: BinaryIO, out: BinaryIO) -> None:
    """The child's loop: options, then one answer per requested path, until the input closes.

    An answer is its windows, each written (and flushed) as soon as it is ready, so the parent
    uses one while the next decodes; it ends after the window marked ``last`` or an error line.
    """
    from faster_whisper.feature_extractor import FeatureExtractor

    options = json.loads(inp.readline())
    extractor = FeatureExtractor(**options["features"])
    window_s = float(options.get("window_s", DEFAULT_WINDOW_S))
    for line in inp:
        request = json.loads(line)
        start, growing = request.get("start"), request.get("growing")
        try:
            windows = iter_windows(
                Path(request["path"]),
                batching=options["batching"],
                extractor=extractor,
                window_s=window_s,
                start=ResumePoint(int(start[0]), float(start[1])) if start else None,
                growing=Path(growing) if growing else None,
                stall_s=float(request.get("stall_s", STALL_S)),
            )
            for window in windows:
                _write_window(out, window)
                del window  # sent: not held while the next one decodes
        except TranscribeError as exc:
            failed = {"ok": False, "error": str(exc), "download": isinstance(exc, DownloadEnded)}
            out.write(json.dumps(failed).encode() + b"\n")
            out.flush()


def _write_window(out: BinaryIO, window: PreparedAudio) -> None:
    """A JSON header line, then the raw float32 bytes of the audio and of the features."""
    f = window.features
    header = {
        "ok": True,
        "samples": len(window.audio),
        "clips": window.clips,
        "chunks": window.chunks,
        "features": list(f.shape) if f is not None else None,
        "offset": window.offset,
        "index": window.index,
        "last": window.last,
        "total": window.total,
    }
    out.write(json.dumps(header, default=lambda v: v.item()).encode() + b"\n")  # numpy scalars
    out.write(np.ascontiguousarray(window.audio, dtype=np.float32).tobytes())
    if f is not None:
        out.write(np.ascontiguousarray(f, dtype=np.float32).tobytes())
    out.flush()


if __name__ == "__main__":
    map_large_blocks()  # ytingest/malloc.py: the child's peak 444 -> 311 MiB on an hour
    _serve(sys.stdin.buffer, sys.stdout.buffer)
