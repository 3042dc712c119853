"""The decoder child process: ``python -m ytingest.models.decoder`` runs ``iter_windows`` (decode,
VAD, log-mel features, a window at a time) for the paths it is sent, outside the engine's process.

The engine's side is ``ytingest.stages.decoder_process.DecoderProcess``, which explains the
protocol and why a process. Synchronous; nothing here runs in the engine's process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ytingest.errors import TranscribeError
from ytingest.items import PreparedAudio
from ytingest.models.windows import iter_windows

DEFAULT_WINDOW_S = 300.0


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
        path = Path(json.loads(line)["path"])
        try:
            windows = iter_windows(path, batching=options["batching"], extractor=extractor, window_s=window_s)
            for window in windows:
                _write_window(out, window)
                del window  # sent: not held while the next one decodes
        except TranscribeError as exc:
            out.write(json.dumps({"ok": False, "error": str(exc)}).encode() + b"\n")
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
    _serve(sys.stdin.buffer, sys.stdout.buffer)
