"""``Runtime``: what an engine's runs share — the executors, the models (built once, by name:
``ytingest/backends.py``), the decoder processes and the GPU probe."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ytingest import backends
from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.monitor.gpu import GpuProbe
from ytingest.ports import Embedder, SpeakerTagger, Transcriber
from ytingest.speakers.setup import build_tagger
from ytingest.stages.decode import Prepare
from ytingest.stages.decode_pool import DecodePool, decode_with

T = TypeVar("T")


class Runtime:
    """Each model loads in the executor that will run it, the first time a run (or a search) needs
    it; a model given here is used as it is (tests, and apps that share one)."""

    def __init__(
        self,
        settings: Settings,
        *,
        transcriber: Transcriber | None = None,
        embedder: Embedder | None = None,
        tagger: SpeakerTagger | None = None,
    ) -> None:
        self.settings = settings
        self._transcriber, self._embedder, self._tagger = transcriber, embedder, tagger
        self.asr_pool = ThreadPoolExecutor(settings.asr_workers, thread_name_prefix="ytingest-asr")
        self.embed_pool = ThreadPoolExecutor(1, thread_name_prefix="ytingest-embed")
        self.speaker_pool = ThreadPoolExecutor(
            settings.speaker_workers, thread_name_prefix="ytingest-speakers"
        )
        self.decode_pool = ThreadPoolExecutor(1, thread_name_prefix="ytingest-decode")
        self._decoder: DecodePool | None = None  # the decoder processes, started by the first run
        self.gpu: GpuProbe | None = None

    async def start(self) -> None:
        self.gpu = await asyncio.to_thread(GpuProbe)

    async def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = await self._in(self.embed_pool, backends.embedder)
        return self._embedder

    async def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            self._transcriber = await self._in(self.asr_pool, backends.transcriber)
        return self._transcriber

    async def speaker_tagger(self, db: Database) -> SpeakerTagger | None:
        """Speaker ID (on unless SPEAKERS=false): the encoder, voices/ enrolled, built once."""
        if self._tagger is None and self.settings.speakers:
            self._tagger = await build_tagger(self.settings, db, self.speaker_pool)
        return self._tagger

    async def prepare(self, settings: Settings, transcriber: Transcriber) -> Prepare | None:
        """How the decode stage decodes files for ``transcriber`` (its processes started now)."""
        prepare, self._decoder = await decode_with(settings, transcriber, self._decoder, self.decode_pool)
        return prepare

    async def _in(self, pool: ThreadPoolExecutor, build: Callable[[Settings], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, build, self.settings)

    async def aclose(self) -> None:
        """Release the executors, stop the decoder processes, close the GPU probe."""
        if self.gpu is not None:
            self.gpu.close()
        for pool in (self.asr_pool, self.embed_pool, self.speaker_pool, self.decode_pool):
            pool.shutdown(wait=False, cancel_futures=True)
        if self._decoder is not None:
            await self._decoder.aclose()
            self._decoder = None
