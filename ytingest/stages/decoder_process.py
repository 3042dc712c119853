"""``DecoderProcess``: the decode stage's client of its child process (``ytingest.models.decoder``),
which runs ``iter_windows`` (decode, VAD, features, a window at a time) outside this process.

PyAV keeps the GIL while it decodes. In a thread beside the model it slowed everything else
that needs the GIL: an embedding call took 3.8 s instead of 37 ms beside it (2 cores,
``python -m bench.gil``), and the ASR stage's Python side waited the same way. In a child process
it contends for nothing but CPU.

Protocol, one file at a time: the first line to the child is the options JSON
(``WhisperTranscriber.prepare_options``, plus ``window_s``: 300 when absent); then one JSON line
``{"path", "start": [index, offset] or null, "growing": the .part or null, "stall_s"}`` per file
(``iter_windows``'s arguments). The child answers a file with its windows in order, each as soon as it
is decoded: a JSON header line ``{"ok": true, "samples", "clips", "chunks", "features" (shape or
null), "offset", "index", "last", "total"}``, then the raw float32 bytes of the audio and of the
features. The answer ends after the window with ``"last": true``, or at a ``{"ok": false,
"error", "download"}`` line, which may follow some windows (a file corrupt past its start;
``download``: a growing file whose download failed, ``DownloadEnded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import numpy as np

from ytingest.childenv import child_env
from ytingest.errors import TranscribeError
from ytingest.items import PreparedAudio, ResumePoint
from ytingest.models.growing import STALL_S, DownloadEnded

# the longest header line (a 300 s window's is ~6 KB); past twice this much unread, the parent
# stops reading the pipe, so the child, blocked writing, runs at most about a window ahead
HEADER_LIMIT = 1024 * 1024


class DecoderProcess:
    """A long-lived ``python -m ytingest.models.decoder`` child; started again if it dies."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = json.dumps(options).encode() + b"\n"
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: Any = None
        self._lock = asyncio.Lock()
        self._killed: list[asyncio.subprocess.Process] = []  # reaped by the next start or aclose

    async def start(self) -> None:
        """Start the child now (it imports faster-whisper: about a second) instead of on first use."""
        await self._reap()
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
                limit=HEADER_LIMIT,
                env=child_env(),  # no DATABASE_URL: ``ytingest.childenv``
            )
            assert self._proc.stdin is not None
            self._proc.stdin.write(self._options)

    async def windows(
        self,
        path: Path,
        *,
        start: ResumePoint | None = None,
        growing: Path | None = None,
        stall_s: float = STALL_S,
    ) -> AsyncGenerator[PreparedAudio, None]:
        """``iter_windows(path, start=, growing=, stall_s=)`` in the child, each window as it
        arrives. TranscribeError: the file (or the child) failed, possibly after some windows;
        DownloadEnded: a growing file's download did. The file holds the child until its
        last window; a consumer that stops early (close it, e.g. with ``contextlib.aclosing``)
        leaves the stream out of step, so the child is killed and the next call starts another."""
        request = {
            "path": str(path),
            "start": [start.index, start.offset] if start is not None else None,
            "growing": str(growing) if growing is not None else None,
            "stall_s": stall_s,
        }
        async with self._lock:
            await self.start()
            in_step = False  # the child's answer was read to its end
            asked = False
            try:
                while not in_step:
                    try:
                        header, window = await self._next_window(None if asked else request)
                        asked = True
                    except (OSError, ValueError, EOFError, asyncio.IncompleteReadError):
                        reason = self._last_error()
                        in_step = True  # nothing to keep in step with: the child is closed
                        await self.aclose()
                        raise TranscribeError(f"the decoder process stopped: {reason}") from None
                    if window is None:
                        in_step = True
                        raise (DownloadEnded if header.get("download") else TranscribeError)(header["error"])
                    in_step = window.last
                    yield window
                    del window  # not held while the next one is read
            finally:
                if not in_step:  # closed or cancelled mid-answer
                    self._kill()

    async def _next_window(
        self, request: dict[str, Any] | None
    ) -> tuple[dict[str, Any], PreparedAudio | None]:
        """Send ``request`` (on the first window), then read the next header and its window (None
        after an error header)."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        if request is not None:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            await proc.stdin.drain()
        line = await proc.stdout.readline()
        if not line:
            raise EOFError
        header = json.loads(line)
        if not header["ok"]:
            return header, None
        audio = await _array(proc.stdout, (header["samples"],))
        features = await _array(proc.stdout, header["features"]) if header["features"] else None
        window = PreparedAudio(
            audio,
            tuple(header["clips"]),
            tuple(header["chunks"]),
            features,
            offset=header["offset"],
            index=header["index"],
            last=header["last"],
            total=header["total"],
        )
        return header, window

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            self._killed.append(proc)

    async def _reap(self) -> None:
        """Drain the pipes of the children killed mid-answer, then wait for them, so nothing is left
        open (asyncio's ``wait()`` returns only once the child's output has been read to its end)."""
        while self._killed:
            proc = self._killed.pop()
            with contextlib.suppress(Exception):
                if proc.stdin is not None:
                    proc.stdin.close()
                if proc.stdout is not None:
                    await proc.stdout.read()
                await proc.wait()

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
        await self._reap()
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
