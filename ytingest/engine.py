"""``Engine``: owns the database, the models, the queues and the one TaskGroup of a run."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ytingest.config import Settings
from ytingest.db.database import Database, open_database
from ytingest.db.embedded import EmbeddedPostgres
from ytingest.errors import ConfigError, YtingestError, first_error
from ytingest.eventloop import make_fork_safe
from ytingest.items import RunSummary, SearchHit
from ytingest.logs import get_logger
from ytingest.monitor.http import MetricsServer
from ytingest.monitor.last_run import publish
from ytingest.monitor.monitor import Monitor
from ytingest.pipeline.context import Feed, RunContext
from ytingest.ports import Downloader, Embedder, Source, SpeakerTagger, Transcriber
from ytingest.run import Sources, build_search_index, drive, knobs, open_run, status_document
from ytingest.runtime import Runtime
from ytingest.search import SearchQuery
from ytingest.stages.description import PIPELINE, Stage
from ytingest.stages.discover import ListDiscoverer, Listing, run_discovery
from ytingest.stages.download import GlobalGate
from ytingest.ytdlp.downloader import ytdlp_sources

log = get_logger()


class Engine:
    """Channel URL in, searchable transcript rows out: ``async with Engine(settings) as engine:
    await engine.stream(url)``. Every collaborator can be injected (tests use fakes for the
    engine's own logic); by default the real ones are built from ``settings`` when first needed."""

    def __init__(
        self,
        settings: Settings,
        *,
        discoverer: Source | None = None,
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
        self.runtime = Runtime(settings, transcriber=transcriber, embedder=embedder, tagger=tagger)
        self._db = database
        self._embedded: EmbeddedPostgres | None = None
        self._run_ctx: RunContext | None = None
        self.cluster_view: Callable[[], dict[str, Any]] | None = None  # a worker's cluster totals
        self._stopping: asyncio.Event | None = None  # set while a stream() call is under way
        self._http: MetricsServer | None = None
        self.monitor: Monitor | None = None  # the current (or last) run's monitor
        self._finished: dict[str, Any] | None = None  # the last run's final /status (last-run.json)

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
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
            self._db, self._embedded = await open_database(self.settings)
        try:
            await self.runtime.start()
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
        """Close the pool, stop the embedded server, release the executors and decoders."""
        if self._http is not None:
            await self._http.stop()
            self._http = None
        if self._db is not None:
            await self._db.close()
        if self._embedded is not None:
            await self._embedded.stop()
            self._embedded = None
        await self.runtime.aclose()

    def stop(self) -> None:
        """Graceful stop of the current run: discovery and new downloads stop, work in flight is
        stored. A later ``stream()`` runs normally; with no run under way it does nothing."""
        if self._stopping is not None and not self._stopping.is_set():
            self._stopping.set()
            log.warning("stop_requested")

    # ---- models, loaded once, in the executor that runs them (by name: ytingest/backends.py) ----
    async def embedder(self) -> Embedder:
        return await self.runtime.embedder()

    async def transcriber(self) -> Transcriber:
        return await self.runtime.transcriber()

    async def speaker_tagger(self) -> SpeakerTagger | None:
        """Speaker ID (on unless SPEAKERS=false): the encoder, voices/ enrolled, built once."""
        return await self.runtime.speaker_tagger(self.database)

    # ---- the pipeline -----------------------------------------------------------------------
    def _ytdlp(self) -> tuple[Source, Downloader]:
        """The lister and downloader: yt-dlp's unless given, built by the first run, so a bad yt-dlp
        option (exit 2) stops ``stream`` and ``retry``, not ``search`` or ``status``."""
        if self._discoverer is None or self._downloader is None:
            lister, downloader = ytdlp_sources(self.settings)
            self._discoverer, self._downloader = self._discoverer or lister, self._downloader or downloader
        return self._discoverer, self._downloader

    def discoverer(self) -> Source:
        """The lister runs use (yt-dlp's unless one was given)."""
        return self._ytdlp()[0]

    async def stream(
        self,
        url: str,
        *,
        limit: int | None = None,
        skip_shorts: bool = False,
        discoverer: Source | None = None,
        **listing: Any,
    ) -> RunSummary:
        """Discover, download, transcribe, embed and store a channel's videos, all stages at once;
        ``listing``: the rest of ``Listing``'s fields (since, until, new_only, tabs)."""
        what = Listing(limit=limit, skip_shorts=skip_shorts, **listing)
        source = discoverer or self._ytdlp()[0]

        async def discover(ctx: RunContext, first: asyncio.Queue[Any]) -> None:
            await run_discovery(ctx, source, url, first, what)

        return await self._run(url, discover, listing=what, lister=source)

    async def work(self, feed: Feed, *, gate: GlobalGate | None = None, name: str = "worker") -> RunSummary:
        """Process the videos ``feed`` puts on the pipeline (a cluster worker's claims) instead of
        a channel's listing; downloads also pass ``gate``, the cluster's shared download budget."""
        if self.settings.mode == "bulk":
            raise ConfigError("a worker runs every stage at once: MODE=bulk is for `ytingest stream`")
        return await self._run(f"ytingest:{name}", feed, gate=gate)

    async def _run(
        self,
        url: str,
        feed: Feed,
        *,
        listing: Listing | None = None,
        lister: Source | None = None,
        gate: GlobalGate | None = None,
    ) -> RunSummary:
        """One run: ``open_run`` builds it, ``drive`` runs every stage; the search index after."""
        discoverer, downloader = self._ytdlp()
        self._stopping = stopping = asyncio.Event()
        try:
            sources = Sources(lister or discoverer, downloader, listing)
            parts, monitor = await open_run(
                url, self.runtime, self.database, self.pipeline, sources, stopping=stopping, gate=gate
            )
            ctx, self.monitor, self._run_ctx = parts.ctx, monitor, parts.ctx
            s, home = self.settings, ctx.settings.ytingest_home
            try:
                await drive(parts, self.pipeline, monitor, url, feed, listing)
            except* YtingestError as group:
                self._finished = publish(home, url, monitor, knobs(s, ctx), error=str(first_error(group)))
                raise first_error(group) from None
            finally:
                self._run_ctx = None
        finally:
            self._stopping = None
        await build_search_index(self.database, stopping=ctx.stopping.is_set())
        summary = ctx.summary()
        self._finished = publish(home, url, monitor, knobs(s, None), summary.to_dict())
        log.info("run_finished", **{k: v for k, v in summary.to_dict().items() if k != "failures"})
        return summary

    @property
    def metrics_url(self) -> str | None:
        """Base URL of /metrics and /status while the endpoint is on."""
        return f"http://{self._http.host}:{self._http.port}" if self._http is not None else None

    def status_document(self) -> dict[str, Any]:
        """What ``/status`` serves and the dashboard draws (``run.status_document``)."""
        if self._run_ctx is None and self._finished is not None:
            return self._finished
        cluster = self.cluster_view() if self.cluster_view is not None else None
        return status_document(self.settings, self._run_ctx, self.monitor, cluster)

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
            vector = (await loop.run_in_executor(self.runtime.embed_pool, embedder.encode, [text]))[0]
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
