"""``DecodePool``: the decode stage's processes, so decoding keeps up with an accelerator.

Per audio-hour of Opus on one core, PyAV's decode and resampling take about 6 CPU-s, Silero VAD
9 and the log-mel features 1.5: one process doing all three tops out near 216x real time, below
what one GPU transcribes (large-v3-turbo batched on an RTX 4090: about 300x). So the work is split:

- one reader (``DecoderProcess`` with ``batching: off``) decodes the file and cuts it into windows
  at silences, in order (the cut needs the audio before it, so this part stays sequential);
- DECODE_WORKERS pool processes (``models/decoder.speech_features``) run VAD and features, the
  costly part, on the windows in parallel: the windows of one long video spread over them and are
  handed on in order.

At most DECODE_WORKERS windows are in the pool at once, plus the one the reader has ready, so
memory stays bounded by windows, not by the video's length. With DECODE_WORKERS=1 (a 2-core
machine) there is no pool: the reader does VAD and features itself, as one process did before,
which saves a process start (an import of faster-whisper) per run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import deque
from collections.abc import AsyncGenerator
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any

from ytingest.childenv import scrubbed_environ
from ytingest.config import Settings
from ytingest.errors import TranscribeError
from ytingest.items import PreparedAudio, ResumePoint
from ytingest.models.decoder import load_extractor, speech_features
from ytingest.ports import PreparingTranscriber, ProcessDecoding
from ytingest.stages.decode import Prepare, windows_in_thread
from ytingest.stages.decoder_process import DecoderProcess


def _ready() -> None:
    """Nothing: submitted once per worker so each has started (and imported) before the run."""


class DecodePool:
    """The reader process and the VAD + features processes (none when ``batching`` is off, or with
    one worker: then the reader prepares its windows itself)."""

    def __init__(self, options: dict[str, Any], workers: int) -> None:
        self._batching = options["batching"] != "off" and workers > 1
        self._reader = DecoderProcess({**options, "batching": "off"} if self._batching else options)
        self._features: dict[str, Any] = options["features"]
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    async def start(self) -> None:
        """Start the reader and the workers now, so their imports overlap the first downloads."""
        await self._reader.start()
        if self._batching and self._pool is None:
            loop = asyncio.get_running_loop()
            # spawn copies os.environ (it takes no env): the workers, and multiprocessing's resource
            # tracker, all start here, without DATABASE_URL (``childenv.scrubbed_environ``)
            with scrubbed_environ():
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("spawn"),  # never fork a process with threads
                    initializer=load_extractor,
                    initargs=(self._features,),
                )
                ready = [loop.run_in_executor(self._pool, _ready) for _ in range(self.workers)]
            await asyncio.gather(*ready)

    async def windows(
        self, path: Path, *, start: ResumePoint | None = None, growing: Path | None = None
    ) -> AsyncGenerator[PreparedAudio, None]:
        """``path``'s windows in order (from ``start``; ``growing``: read as it downloads), each
        with its VAD clips, chunks and features. TranscribeError: the file (or a decoder process)
        failed, possibly after some windows; DownloadEnded: a growing file's download did."""
        await self.start()
        pool = self._pool
        raw = self._reader.windows(path, start=start, growing=growing)
        waiting: deque[tuple[PreparedAudio, asyncio.Future[Any]]] = deque()
        loop = asyncio.get_running_loop()
        try:
            async for window in raw:
                if pool is None:
                    yield window
                    continue
                waiting.append((window, loop.run_in_executor(pool, speech_features, window.audio)))
                while len(waiting) > self.workers or (waiting and waiting[0][1].done()):
                    yield await self._with_features(*waiting.popleft())
            while waiting:
                yield await self._with_features(*waiting.popleft())
        finally:
            for _, future in waiting:
                future.cancel()
            await raw.aclose()

    async def _with_features(self, window: PreparedAudio, future: asyncio.Future[Any]) -> PreparedAudio:
        try:
            clips, chunks, features = await future
        except BrokenProcessPool:  # a worker died (a crash in a native decoder): start new ones
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            raise TranscribeError("a decoder process stopped while preparing this file") from None
        return replace(window, clips=clips, chunks=chunks, features=features)

    async def aclose(self) -> None:
        """Stop the reader and the workers."""
        await self._reader.aclose()
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


async def decode_with(
    settings: Settings, transcriber: object, pool: DecodePool | None, thread: Executor
) -> tuple[Prepare | None, DecodePool | None]:
    """How the decode stage decodes a file's windows, and the pool it keeps (started now): the
    reader and worker processes for a transcriber that can decode in them (``ProcessDecoding``:
    faster-whisper's), else the transcriber in ``thread`` (or DECODE_PROCESS=false); None when
    the transcriber decodes by itself."""
    if not isinstance(transcriber, PreparingTranscriber):
        return None, pool
    if settings.decode_process and isinstance(transcriber, ProcessDecoding):
        pool = pool or DecodePool(transcriber.prepare_options, settings.decode_workers)
        await pool.start()
        return pool.windows, pool
    return windows_in_thread(transcriber, thread), pool
