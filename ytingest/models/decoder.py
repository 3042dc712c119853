"""The decoder child process: ``python -m ytingest.models.decoder`` runs ``prepare_file`` (decode,
VAD, log-mel features) for the paths it is sent, outside the engine's process.

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
from ytingest.models.batched_asr import prepare_file


def _serve(inp: BinaryIO, out: BinaryIO) -> None:
    """The child's loop: options, then one answer per requested path, until the input closes."""
    from faster_whisper.feature_extractor import FeatureExtractor

    options = json.loads(inp.readline())
    extractor = FeatureExtractor(**options["features"])
    for line in inp:
        try:
            prepared = prepare_file(
                Path(json.loads(line)["path"]), batching=options["batching"], extractor=extractor
            )
        except TranscribeError as exc:
            out.write(json.dumps({"ok": False, "error": str(exc)}).encode() + b"\n")
            out.flush()
            continue
        f = prepared.features
        shape = list(f.shape) if f is not None else None
        header = {
            "ok": True,
            "samples": len(prepared.audio),
            "clips": prepared.clips,
            "chunks": prepared.chunks,
            "features": shape,
        }
        out.write(json.dumps(header, default=lambda v: v.item()).encode() + b"\n")  # numpy scalars
        out.write(np.ascontiguousarray(prepared.audio, dtype=np.float32).tobytes())
        if f is not None:
            out.write(np.ascontiguousarray(f, dtype=np.float32).tobytes())
        out.flush()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
