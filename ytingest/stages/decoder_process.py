"""``DecoderProcess``: the decode stage's client of its child process (``ytingest.models.decoder``),
which runs ``prepare_file`` (decode, VAD, features) outside this process.

PyAV keeps the GIL while it decodes. In a thread beside the model it slowed everything else
that needs the GIL: an embedding call took 3.8 s instead of 37 ms beside it (2 cores,
``python -m bench.gil``), and the ASR stage's Python side waited the same way. In a child process
it contends for nothing but CPU.

Protocol, one request at a time: the first line to the child is the options JSON
(``WhisperTranscriber.prepare_options``); then one JSON line per file path. The child answers
each with a JSON header line, then the raw float32 bytes of the audio and of the features.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ytingest.errors import TranscribeError
from ytingest.items import PreparedAudio


class DecoderProcess:
    """A long-lived ``python -m ytingest.models.decoder`` child; started again if it dies."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = json.dumps(options).encode() + b"\n"
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: Any = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start the child now (it imports faster-whisper: about a second) instead of on first use."""
        if self._proc is None or self._proc.returncode is not None:
            self._close_stderr()
            self._stderr = tempfile.TemporaryFile()
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ytingest.models.decoder",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=self._stderr,
                limit=64 * 1024 * 1024,
            )
            assert self._proc.stdin is not None
            self._proc.stdin.write(self._options)

    async def prepare(self, path: Path) -> PreparedAudio:
        """``prepare_file(path)`` in the child. TranscribeError: the file (or the child) failed."""
        async with self._lock:
            await self.start()
            try:
                header, audio, features = await self._exchange(path)
            except (OSError, ValueError, EOFError, asyncio.IncompleteReadError):
                reason = self._last_error()
                await self.aclose()
                raise TranscribeError(f"the decoder process stopped: {reason}") from None
            except asyncio.CancelledError:  # mid-answer: the stream is out of step, start afresh
                self._kill()
                raise
        if not header["ok"]:
            raise TranscribeError(header["error"])
        return PreparedAudio(audio, tuple(header["clips"]), tuple(header["chunks"]), features)

    async def _exchange(self, path: Path) -> tuple[dict[str, Any], Any, Any]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"path": str(path)}).encode() + b"\n")
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        if not line:
            raise EOFError
        header = json.loads(line)
        if not header["ok"]:
            return header, None, None
        audio = await _array(proc.stdout, (header["samples"],))
        features = await _array(proc.stdout, header["features"]) if header["features"] else None
        return header, audio, features

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    def _last_error(self) -> str:
        if self._stderr is None:
            return "no message"
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1][:300] if lines else "no message"

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    async def aclose(self) -> None:
        """Close the child's input and wait for it; kill it if it does not end within 5 s."""
        proc, self._proc = self._proc, None
        self._close_stderr()
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def _array(stream: asyncio.StreamReader, shape: Any) -> np.ndarray[Any, np.dtype[np.float32]]:
    count = int(np.prod(shape))
    data = await stream.readexactly(count * 4)
    return np.frombuffer(data, dtype=np.float32).reshape(shape)
