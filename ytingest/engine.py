"""``Engine``: owns the database, the models, the queues and the one TaskGroup of a run."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.db.embedded import EmbeddedPostgres
from ytingest.errors import ConfigError, StoreError, YtingestError
from ytingest.eventloop import make_fork_safe
from ytingest.items import RunSummary, SearchHit
from ytingest.logs import get_logger
from ytingest.models.speakers import SpeakerTagger
from ytingest.monitor.build import build_monitor
from ytingest.monitor.gpu import GpuProbe
from ytingest.monitor.http import MetricsServer
from ytingest.monitor.last_run import publish
from ytingest.monitor.monitor import Monitor
from ytingest.pipeline.budget import download_budget
from ytingest.pipeline.context import Feed, RunContext
from ytingest.pipeline.tuning import Tuning
from ytingest.pipeline.turns import turns_wanted
from ytingest.search import SearchQuery
from ytingest.sourcetext import public_url
from ytingest.speakers.setup import build_tagger
from ytingest.stages.bulk import run_bulk
from ytingest.stages.decode_pool import DecodePool, decode_with
from ytingest.stages.description import PIPELINE, Parts, Stage, inbox_for, metrics_for, wire
from ytingest.stages.discover import Discoverer, ListDiscoverer, Listing, YtDlpDiscoverer, run_discovery
from ytingest.stages.disk import DiskBudget, clean_leftovers
from ytingest.stages.download import Downloader, DownloadPolicy, GlobalGate, YtDlpDownloader
from ytingest.stages.embed import Embedder
from ytingest.stages.pause import SharedBackoff
from ytingest.stages.resume import use_checkpoints
from ytingest.stages.transcribe import Transcriber, run_settings
from ytingest.stages.ytdlp_options import ytdlp_invocation

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
        pipeline: Sequence[Stage] = PIPELINE,
    ) -> None:
        self.settings = settings
        self.pipeline = tuple(pipeline)
        self._discoverer, self._downloader = discoverer, downloader  # None: yt-dlp's (see _ytdlp)
        self._transcriber, self._embedder, self._tagger = transcriber, embedder, tagger
        self._db = database
        self._embedded: EmbeddedPostgres | None = None
        self._asr_pool = ThreadPoolExecutor(settings.asr_workers, thread_name_prefix="ytingest-asr")
        self._embed_pool = ThreadPoolExecutor(1, thread_name_prefix="ytingest-embed")
        self._speaker_pool = ThreadPoolExecutor(
            settings.speaker_workers, thread_name_prefix="ytingest-speakers"
        )
        self._decode_pool = ThreadPoolExecutor(1, thread_name_prefix="ytingest-decode")
        self._decoder: DecodePool | None = None  # the decoder processes, started by the first run
        self._run_ctx: RunContext | None = None
        self.cluster_view: Callable[[], dict[str, Any]] | None = None  # a worker's cluster totals
        self._stopping: asyncio.Event | None = None  # set while a stream() call is under way
        self._gpu: GpuProbe | None = None
        self._http: MetricsServer | None = None
        self.monitor: Monitor | None = None  # the current (or last) run's monitor
        self._finished: dict[str, Any] | None = None  # the last run's final /status (last-run.json)

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
                self._http = MetricsServer(
                    self.status_document, self.settings.metrics_host, self.settings.metrics_port
                )
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
        for pool in (self._asr_pool, self._embed_pool, self._speaker_pool, self._decode_pool):
            pool.shutdown(wait=False, cancel_futures=True)
        if self._decoder is not None:
            await self._decoder.aclose()
            self._decoder = None

    def stop(self) -> None:
        """Graceful stop of the current run: discovery and new downloads stop, work in flight is
        stored. A later ``stream()`` runs normally; with no run under way it does nothing."""
        if self._stopping is not None and not self._stopping.is_set():
            self._stopping.set()
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

            self._transcriber = await asyncio.get_running_loop().run_in_executor(
                self._asr_pool, WhisperTranscriber.from_settings, self.settings
            )
        return self._transcriber

    async def speaker_tagger(self) -> SpeakerTagger | None:
        """Speaker ID (on unless SPEAKERS=false): the encoder, voices/ enrolled, built once."""
        if self._tagger is None and self.settings.speakers:
            self._tagger = await build_tagger(self.settings, self.database, self._speaker_pool)
        return self._tagger

    # ---- the pipeline -----------------------------------------------------------------------

    def _ytdlp(self) -> tuple[Discoverer, Downloader]:
        """The lister and downloader: yt-dlp's unless given, built by the first run, so a bad yt-dlp
        option (exit 2) stops ``stream`` and ``retry``, not ``search`` or ``status``."""
        if self._discoverer is None or self._downloader is None:
            ytdlp = ytdlp_invocation(self.settings)  # the command and the options every child gets
            self._discoverer = self._discoverer or YtDlpDiscoverer(ytdlp)
            self._downloader = self._downloader or YtDlpDownloader(ytdlp, self.settings.download_timeout_s)
        return self._discoverer, self._downloader

    def discoverer(self) -> Discoverer:
        """The lister runs use (yt-dlp's unless one was given)."""
        return self._ytdlp()[0]

    async def stream(
        self,
        url: str,
        *,
        limit: int | None = None,
        skip_shorts: bool = False,
        discoverer: Discoverer | None = None,
        **listing: Any,
    ) -> RunSummary:
        """Discover, download, transcribe, embed and store a channel's videos, all stages at once;
        ``listing``: the rest of ``Listing``'s fields (since, until, new_only, tabs)."""
        what = Listing(limit=limit, skip_shorts=skip_shorts, **listing)
        source = discoverer or self._ytdlp()[0]

        async def discover(ctx: RunContext, first: asyncio.Queue[Any]) -> None:
            await run_discovery(ctx, source, url, first, what)

        return await self._run(url, discover, listing=(source, what))

    async def work(self, feed: Feed, *, gate: GlobalGate | None = None, name: str = "worker") -> RunSummary:
        """Process the videos ``feed`` puts on the pipeline (a cluster worker's claims) instead of
        a channel's listing; downloads also pass ``gate``, the cluster's shared download budget."""
        if self.settings.mode == "bulk":
            raise ConfigError("a worker runs every stage at once: MODE=bulk is for `ytingest stream`")
        return await self._run(f"ytingest:{name}", feed, gate=gate)

    async def _run(
        self,
        label: str,
        feed: Feed,
        *,
        listing: tuple[Discoverer, Listing] | None = None,
        gate: GlobalGate | None = None,
    ) -> RunSummary:
        self._stopping = stopping = asyncio.Event()
        try:
            return await self._stream(label, stopping, feed, listing, gate)
        finally:
            self._stopping = None

    async def _stream(
        self,
        url: str,
        stopping: asyncio.Event,
        feed: Feed,
        listing: tuple[Discoverer, Listing] | None,
        gate: GlobalGate | None,
    ) -> RunSummary:
        db, transcriber, embedder = self.database, await self.transcriber(), await self.embedder()
        s = run_settings(self.settings, transcriber)  # ASR_BATCH_SIZE as fitted to the device
        await db.check_dim(embedder.dim)
        tagger = await self.speaker_tagger()
        await asyncio.to_thread(s.audio_dir.mkdir, parents=True, exist_ok=True)
        if listing is not None:
            await db.register_channel(url)
        ctx = self._run_ctx = RunContext(s, db, metrics_for(self.pipeline, s), stopping=stopping)
        ctx.turns.enabled = turns_wanted(s.model_turns, getattr(transcriber, "device", "cpu"))
        await asyncio.to_thread(clean_leftovers, s.audio_dir, keep_audio=s.keep_audio)
        disk = DiskBudget(s.audio_dir, s.max_audio_bytes, s.min_free_bytes)
        backoff = SharedBackoff(s.rate_limit_base_s, s.rate_limit_max_s)
        lister = listing[0] if listing else None  # one address, one budget; a cluster's gate has its own
        urls = [r.webpage_url or r.url for r in lister.refs] if isinstance(lister, ListDiscoverer) else [url]
        ctx.budget = None if gate else download_budget(s, urls)
        policy = DownloadPolicy(ctx.tuning.downloads, backoff, disk, gate or ctx.budget)
        ctx.metrics.disk = disk
        monitor = self.monitor = build_monitor(s, ctx, backoff, self._gpu or GpuProbe())
        discoverer, downloader = self._ytdlp()
        if isinstance(downloader, YtDlpDownloader):
            downloader.on_progress = ctx.metrics.download.progress
        log.info(
            "run_started",
            channel=public_url(url),  # the credential in a channel URL goes to yt-dlp only
            **(listing[1].to_log() if listing else {}),
            mode=s.mode,
            stages=[st.name for st in self.pipeline],
            **ctx.tuning.to_dict(),
            asr_workers=s.asr_workers,
            db_workers=s.db_workers,
        )
        prepare, self._decoder = await decode_with(s, transcriber, self._decoder, self._decode_pool)
        use_checkpoints(ctx, db, prepare, transcriber.name, embedder.name, tagger.model if tagger else "")
        parts = Parts(
            ctx,
            listing[0] if listing else discoverer,
            downloader,
            transcriber,
            tagger,
            embedder,
            policy,
            self._asr_pool,
            prepare,
            self._embed_pool,
            self._speaker_pool,
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(monitor.run(ctx.finished), name="monitor")
                if s.mode == "bulk" and listing is not None:
                    tg.create_task(run_bulk(parts, self.pipeline, url, listing[1]), name="bulk")
                else:  # streaming: every stage at once
                    first = inbox_for(self.pipeline[0], s)
                    tg.create_task(feed(ctx, first), name="feed")
                    wire(tg, parts, self.pipeline, first, finished=ctx.finished)
        except* YtingestError as group:
            error = str(first_error(group))
            self._finished = publish(s.ytingest_home, url, monitor, self._knobs(), error=error)
            raise first_error(group) from None
        finally:
            self._run_ctx = None
        await self._build_search_index(stopping=ctx.stopping.is_set())
        summary = ctx.summary()
        self._finished = publish(s.ytingest_home, url, monitor, self._knobs(), summary.to_dict())
        log.info("run_finished", **{k: v for k, v in summary.to_dict().items() if k != "failures"})
        return summary

    async def _build_search_index(self, *, stopping: bool) -> None:
        """The HNSW and full-text indexes, once the rows are in; a stopping run, or a database that
        fails here, leaves them to the next run (every video is stored; search scans without them)."""
        t0 = time.monotonic()
        try:
            if not stopping and await self.database.ensure_search_index():
                log.info("search_index_built", ms=round(1000 * (time.monotonic() - t0)))
        except StoreError as exc:
            log.warning("search_index_deferred", reason=str(exc))

    @property
    def metrics_url(self) -> str | None:
        """Base URL of /metrics and /status while the endpoint is on."""
        return f"http://{self._http.host}:{self._http.port}" if self._http is not None else None

    def status_document(self) -> dict[str, Any]:
        """What ``/status`` serves and the dashboard draws: the latest snapshot and the knobs; once a
        run has ended and none runs, that run's final document (state ``finished`` or ``failed``)."""
        if self._run_ctx is None and self._finished is not None:
            return self._finished
        m = self.monitor
        snap = m.latest.to_dict() if m is not None and m.latest is not None else None
        return {
            "state": "running" if self._run_ctx is not None else "idle",
            "snapshot": snap,
            "knobs": self._knobs(),
            **({"cluster": self.cluster_view()} if self.cluster_view is not None else {}),
        }

    def _knobs(self) -> dict[str, Any]:
        """The knobs now: the run's live tuning while one runs, else the settings."""
        s, run = self.settings, self._run_ctx
        live = (run.tuning if run is not None else Tuning.from_settings(s)).to_dict()
        return {
            **live,
            "asr_workers": s.asr_workers,
            "db_workers": s.db_workers,
            "autotune": s.autotune_enabled,
        }

    # ---- reads --------------------------------------------------------------------------------

    async def search(self, query: str | SearchQuery, **options: Any) -> list[SearchHit]:
        """The segments that best match ``query``, hybrid (meaning and words) by default; ``options``
        are ``SearchQuery``'s. Each hit carries its neighbouring segments' text for context."""
        q = query if isinstance(query, SearchQuery) else SearchQuery(query, **options)
        vector = None
        if q.mode != "keyword":
            embedder = await self.embedder()
            text = q.parts.meaning()  # the phrases and words sought; exclusions are not embedded
            loop = asyncio.get_running_loop()
            vector = (await loop.run_in_executor(self._embed_pool, embedder.encode, [text]))[0]
            # compared only with the rows of the model that embedded the query
            q = q if q.embed_model else dataclasses.replace(q, embed_model=embedder.name)
        return await self.database.search(q, vector)

    async def videos(self, *, channel: str | None = None) -> list[dict[str, Any]]:
        """Every known video with its status and upload date, newest first."""
        return await self.database.videos(channel=channel)

    async def channels(self) -> list[dict[str, Any]]:
        """Each channel with its videos done, failed and pending, hours of audio, last run."""
        return await self.database.channels()

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
