"""``Engine``: owns the database, the models, the queues and the one TaskGroup of a run."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.db.embedded import EmbeddedPostgres
from ytingest.errors import ConfigError, YtingestError
from ytingest.items import AudioFile, EmbeddedTranscript, RunSummary, SearchHit, Transcript, VideoRef
from ytingest.logs import get_logger
from ytingest.models.decoder import DecoderProcess
from ytingest.models.speakers import SpeakerTagger
from ytingest.monitor.autotune import AutoTuner
from ytingest.monitor.diagnose import Knobs
from ytingest.monitor.gpu import GpuProbe
from ytingest.monitor.http import MetricsServer
from ytingest.monitor.metrics import Metrics
from ytingest.monitor.monitor import Monitor
from ytingest.monitor.sampler import Sampler
from ytingest.run import Closing, RunContext
from ytingest.runtime import make_fork_safe
from ytingest.speakers.setup import build_tagger, save_unknowns
from ytingest.stages.bulk import Parts, run_bulk
from ytingest.stages.decode import DecodedAudio, Prepare, PreparingTranscriber, decode_worker
from ytingest.stages.discover import Discoverer, ListDiscoverer, YtDlpDiscoverer, run_discovery
from ytingest.stages.disk import DiskBudget, clean_leftovers
from ytingest.stages.download import Downloader, DownloadPolicy, YtDlpDownloader, run_downloads
from ytingest.stages.embed import Embedder, run_batcher
from ytingest.stages.limiter import Limiter
from ytingest.stages.retry import SharedBackoff
from ytingest.stages.store import store_worker
from ytingest.stages.transcribe import Transcriber, transcribe_worker

log = get_logger()


class Engine:
    """Channel URL in, searchable transcript rows out.

    ``async with Engine(settings) as engine: await engine.stream(url)``. Every
    collaborator can be injected (tests use fakes for the engine's own logic);
    by default the real ones are built from ``settings`` when first needed.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        discoverer: Discoverer | None = None,
        downloader: Downloader | None = None,
        transcriber: Transcriber | None = None,
        embedder: Embedder | None = None,
        tagger: SpeakerTagger | None = None,
        database: Database | None = None,
    ) -> None:
        self.settings = settings
        ytdlp = settings.ytdlp_command
        self._discoverer = discoverer or YtDlpDiscoverer(ytdlp)
        self._downloader = downloader or YtDlpDownloader(
            ytdlp, settings.download_timeout_s, cookies_file=settings.cookies_file
        )
        self._transcriber = transcriber
        self._embedder = embedder
        self._tagger = tagger
        self._db = database
        self._embedded: EmbeddedPostgres | None = None
        self._asr_pool = ThreadPoolExecutor(settings.asr_workers, thread_name_prefix="ytingest-asr")
        self._embed_pool = ThreadPoolExecutor(1, thread_name_prefix="ytingest-embed")
        self._decode_pool = ThreadPoolExecutor(1, thread_name_prefix="ytingest-decode")
        self._decoder: DecoderProcess | None = None
        self._run: RunContext | None = None
        self._stop_requested = False
        self._gpu: GpuProbe | None = None
        self._http: MetricsServer | None = None
        self.monitor: Monitor | None = None  # the current (or last) run's monitor

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def database(self) -> Database:
        if self._db is None:
            raise ConfigError("engine is not started")
        return self._db

    async def start(self) -> None:
        """Connect to (or start) PostgreSQL and bring the schema up to date."""
        make_fork_safe(asyncio.get_running_loop())
        if self._db is None:
            dsn = self.settings.database_url
            if dsn is None:
                self._embedded = EmbeddedPostgres(self.settings.pg_dir)
                url = await self._embedded.start()
            else:
                url = dsn.get_secret_value()
            self._db = Database(url, pool_size=self.settings.db_workers + 1, retry_s=self.settings.db_retry_s)
        try:
            self._gpu = await asyncio.to_thread(GpuProbe)
            if self.settings.metrics_port is not None:
                self._http = MetricsServer(self.status_document, self.settings.metrics_host,
                                           self.settings.metrics_port)  # fmt: skip
                await self._http.start()
                log.info("metrics_listening", url=f"http://{self._http.host}:{self._http.port}/status")
            await self._db.connect()
            dim = await self._db.embedding_dim()
            if dim is None:  # a new database: the embedding model decides the vector size
                dim = (await self.embedder()).dim
            await self._db.migrate(dim)
        except BaseException:
            await self.aclose()
            raise
        log.debug("engine_started", database=self._db.where)

    async def aclose(self) -> None:
        """Close the pool, stop the embedded server, release the executors."""
        if self._http is not None:
            await self._http.stop()
            self._http = None
        if self._gpu is not None:
            self._gpu.close()
        if self._db is not None:
            await self._db.close()
        if self._embedded is not None:
            await self._embedded.stop()
            self._embedded = None
        self._asr_pool.shutdown(wait=False, cancel_futures=True)
        self._embed_pool.shutdown(wait=False, cancel_futures=True)
        self._decode_pool.shutdown(wait=False, cancel_futures=True)
        if self._decoder is not None:
            await self._decoder.aclose()
            self._decoder = None

    def stop(self) -> None:
        """Graceful stop: discovery and new downloads stop, work in flight finishes and is stored."""
        self._stop_requested = True
        if self._run is not None:
            self._run.stopping.set()
            log.warning("stop_requested")

    # ---- models, loaded once, in the executor ------------------------------------------------

    async def embedder(self) -> Embedder:
        if self._embedder is None:
            from ytingest.models.embedder import SentenceEmbedder

            s = self.settings
            self._embedder = await asyncio.get_running_loop().run_in_executor(
                self._embed_pool,
                lambda: SentenceEmbedder(s.embed_model, device=s.embed_device, batch_size=s.batch_size),
            )
        return self._embedder

    async def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            from ytingest.models.asr import WhisperTranscriber

            s = self.settings
            self._transcriber = await asyncio.get_running_loop().run_in_executor(
                self._asr_pool,
                lambda: WhisperTranscriber(
                    s.asr_model,
                    device=s.asr_device,
                    compute_type=s.asr_compute_type,
                    workers=s.asr_workers,
                    cpu_threads=s.asr_cpu_threads,
                    beam_size=s.asr_beam_size,
                    batching=s.asr_batching,
                    batch_size=s.asr_batch_size,
                ),  # fmt: skip
            )
        return self._transcriber

    async def speaker_tagger(self) -> SpeakerTagger | None:
        """Speaker ID: None unless VOICES_DIR is set; else enrol the voices and build the tagger once."""
        if self._tagger is None and self.settings.voices_dir is not None:
            self._tagger = await build_tagger(self.settings, self.database, self._asr_pool)
        return self._tagger

    # ---- the pipeline -----------------------------------------------------------------------

    async def stream(
        self,
        url: str,
        *,
        limit: int | None = None,
        skip_shorts: bool = False,
        discoverer: Discoverer | None = None,
    ) -> RunSummary:
        """Discover, download, transcribe, embed and store a channel's videos, all stages at once."""
        db, s = self.database, self.settings
        transcriber, embedder = await self.transcriber(), await self.embedder()
        await db.check_dim(embedder.dim)
        tagger = await self.speaker_tagger()
        await asyncio.to_thread(s.audio_dir.mkdir, parents=True, exist_ok=True)
        await db.register_channel(url)
        io_q: asyncio.Queue[VideoRef | None] = asyncio.Queue(s.io_queue_size)
        asr_q: asyncio.Queue[AudioFile | None] = asyncio.Queue(s.asr_queue_size)
        pcm_q: asyncio.Queue[DecodedAudio | None] = asyncio.Queue(s.decode_queue_size)
        embed_q: asyncio.Queue[Transcript | None] = asyncio.Queue(s.embed_queue_size)
        db_q: asyncio.Queue[EmbeddedTranscript | None] = asyncio.Queue(s.db_queue_size)
        metrics = Metrics.for_workers(io=s.io_workers, asr=s.asr_workers, store=s.db_workers)
        metrics.queues.update(io_q=io_q, asr_q=asr_q, embed_q=embed_q, db_q=db_q)
        ctx = self._run = RunContext(s, db, metrics)
        if self._stop_requested:
            ctx.stopping.set()
        await asyncio.to_thread(clean_leftovers, s.audio_dir, keep_audio=s.keep_audio)
        slots = Limiter(s.io_workers)
        disk = DiskBudget(s.audio_dir, s.max_audio_bytes, s.min_free_bytes)
        policy = DownloadPolicy(slots, SharedBackoff(s.rate_limit_base_s, s.rate_limit_max_s), disk)
        metrics.disk = disk
        monitor = self.monitor = self._make_monitor(metrics, slots)
        if isinstance(self._downloader, YtDlpDownloader):
            self._downloader.on_progress = metrics.download.progress
        asr_done = Closing(s.asr_workers, embed_q)
        db_done = Closing(s.db_workers, None, finished=ctx.finished)
        log.info("run_started", channel=url, limit=limit, skip_shorts=skip_shorts,
                 io_workers=s.io_workers, asr_workers=s.asr_workers,
                 batch_size=s.batch_size, db_workers=s.db_workers)  # fmt: skip
        discoverer = discoverer or self._discoverer
        prepare = await self._prepare_fn(transcriber)
        parts = Parts(ctx, discoverer, self._downloader, transcriber, tagger, embedder, policy,
                      self._asr_pool, prepare, self._embed_pool)  # fmt: skip
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(monitor.run(ctx.finished), name="monitor")
                if s.mode == "bulk":
                    tg.create_task(run_bulk(parts, url, limit=limit, skip_shorts=skip_shorts), name="bulk")
                else:  # streaming: every stage at once
                    dl, asr_pool = self._downloader, self._asr_pool
                    tg.create_task(run_discovery(ctx, discoverer, url, io_q, limit=limit,
                                                 skip_shorts=skip_shorts), name="discover")  # fmt: skip
                    tg.create_task(run_downloads(ctx, dl, io_q, asr_q, tg, policy), name="download")
                    tg.create_task(decode_worker(ctx, prepare, asr_q, pcm_q), name="decode")
                    for i in range(s.asr_workers):
                        tg.create_task(transcribe_worker(ctx, transcriber, tagger, asr_pool, pcm_q, embed_q,
                                                         asr_done), name=f"asr-{i}")  # fmt: skip
                    tg.create_task(run_batcher(ctx, embedder, self._embed_pool, embed_q, db_q), name="embed")
                    for i in range(s.db_workers):
                        tg.create_task(store_worker(ctx, db_q, db_done, asr_model=transcriber.name,
                                                    embed_model=embedder.name),
                                       name=f"store-{i}")  # fmt: skip
        except* YtingestError as group:
            raise first_error(group) from None
        finally:
            self._run = None
        await save_unknowns(tagger, db)
        await self._build_search_index(stopping=ctx.stopping.is_set())
        summary = ctx.summary()
        log.info("run_finished", **{k: v for k, v in summary.to_dict().items() if k != "failures"})
        return summary

    async def _prepare_fn(self, transcriber: Transcriber) -> Prepare | None:
        """How the decode stage prepares a file: the decoder process for faster-whisper (started
        now, so its imports overlap the first downloads), else the transcriber in a thread; None
        when the transcriber decodes by itself."""
        from ytingest.models.asr import WhisperTranscriber

        if not isinstance(transcriber, PreparingTranscriber):
            return None
        if self.settings.decode_process and isinstance(transcriber, WhisperTranscriber):
            if self._decoder is None:
                self._decoder = DecoderProcess(transcriber.prepare_options)
            await self._decoder.start()
            return self._decoder.prepare
        loop, pool = asyncio.get_running_loop(), self._decode_pool
        return lambda path: loop.run_in_executor(pool, transcriber.prepare, path)

    async def _build_search_index(self, *, stopping: bool) -> None:
        """The HNSW index, built once the rows are in (a stopping run leaves it to the next one;
        search works without it, by exact scan)."""
        if stopping:
            return
        t0 = time.monotonic()
        if await self.database.ensure_search_index():
            log.info("search_index_built", ms=round(1000 * (time.monotonic() - t0)))

    def _make_monitor(self, metrics: Metrics, slots: Limiter) -> Monitor:
        s = self.settings
        tuner = None
        if s.autotune_enabled:
            tuner = AutoTuner(slots, metrics.stages["download"], embedder=self._embedder,
                              io_max=max(s.io_workers, s.io_workers_max))  # fmt: skip
        knobs = Knobs(s.io_workers, s.asr_workers, s.batch_size, s.db_workers, s.io_workers_max)
        sampler = Sampler(metrics, s.audio_dir, self._gpu or GpuProbe())
        return Monitor(sampler, knobs, interval_s=s.monitor_interval_s, window_s=s.diagnose_window_s,
                       stats_every_s=s.stats_interval_s, tuner=tuner)  # fmt: skip

    @property
    def metrics_url(self) -> str | None:
        """Base URL of /metrics and /status while the endpoint is on."""
        return f"http://{self._http.host}:{self._http.port}" if self._http is not None else None

    def status_document(self) -> dict[str, Any]:
        """What ``/status`` serves and the dashboard draws: the latest snapshot and the knobs."""
        m = self.monitor
        snap = m.latest.to_dict() if m is not None and m.latest is not None else None
        return {
            "state": "running" if self._run is not None else "idle",
            "snapshot": snap,
            "knobs": {
                "io_workers": m.knobs.io_workers if m else self.settings.io_workers,
                "asr_workers": self.settings.asr_workers,
                "batch_size": self.settings.batch_size,
                "db_workers": self.settings.db_workers,
                "autotune": self.settings.autotune_enabled,
            },
        }

    # ---- reads --------------------------------------------------------------------------------

    async def search(self, query: str, *, limit: int = 10, speaker: str | None = None) -> list[SearchHit]:
        """Segments nearest in meaning to ``query`` (cosine, HNSW)."""
        embedder = await self.embedder()
        await self.database.check_dim(embedder.dim)
        vectors = await asyncio.get_running_loop().run_in_executor(self._embed_pool, embedder.encode, [query])
        return await self.database.search(vectors[0], limit=limit, speaker=speaker)

    async def retry(self, *, include_pending: bool = False) -> RunSummary:
        """Stream the failed videos again (and, optionally, those left pending by a stopped run)."""
        refs = await self.database.failed_refs(include_pending=include_pending)
        return await self.stream("ytingest:retry", discoverer=ListDiscoverer(refs))

    async def status(self) -> dict[str, Any]:
        """Videos by status, stored segments, and failures with reasons."""
        return await self.database.status()

    async def speakers(self) -> dict[str, Any]:
        """Enrolled voiceprints and anonymous voices, with their segment counts."""
        return await self.database.speakers_report()


def first_error(group: BaseExceptionGroup[YtingestError]) -> YtingestError:
    """The first ytingest error in a (possibly nested) exception group."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, YtingestError)
    return exc
