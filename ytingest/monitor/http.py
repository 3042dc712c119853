"""``/metrics`` (Prometheus text) and ``/status`` (JSON) on 127.0.0.1:METRICS_PORT, opt-in; and what
every server of ours shares: ``serve_app`` and the Host check (``host_guard``)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ytingest.errors import ConfigError
from ytingest.logs import get_logger

log = get_logger()

StatusSource = Callable[[], dict[str, Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD = frozenset({"", "0.0.0.0", "::"})  # bound to every address: no one name to expect


class SnapshotCollector(Collector):
    """Prometheus series built from the latest ``/status`` document at scrape time."""

    def __init__(self, status: StatusSource) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        snap = self._status().get("snapshot")
        if not snap:
            return
        per_stage: dict[str, tuple[str, str, str]] = {
            "depth": ("ytingest_queue_depth", "items waiting in the stage's input queue", "gauge"),
            "capacity": ("ytingest_queue_capacity", "size of the stage's input queue", "gauge"),
            "queued_audio_s": (
                "ytingest_queue_audio_seconds",
                "audio-seconds waiting in the stage's input queue",
                "gauge",
            ),
            "workers": ("ytingest_stage_workers", "workers the stage may run", "gauge"),
            "busy": ("ytingest_stage_busy_ratio", "fraction of worker time busy, last interval", "gauge"),
            "items_per_s": ("ytingest_stage_items_per_second", "items finished per second", "gauge"),
            "audio_s_per_s": ("ytingest_stage_audio_seconds_per_second", "audio seconds per second", "gauge"),
            "latency_s": ("ytingest_stage_latency_seconds", "mean seconds per item, recent items", "gauge"),
            "done": ("ytingest_stage_items", "items finished", "counter"),
            "errors": ("ytingest_stage_errors", "items failed", "counter"),
        }
        for key, (name, doc, kind) in per_stage.items():
            family: GaugeMetricFamily | CounterMetricFamily = (
                CounterMetricFamily(name, doc, labels=["stage"])
                if kind == "counter"
                else GaugeMetricFamily(name, doc, labels=["stage"])
            )
            for stage, values in snap["stages"].items():
                family.add_metric([stage], float(values[key]))
            yield family
        yield GaugeMetricFamily(
            "ytingest_download_bytes_per_second", "download rate", value=snap["download_bytes_per_s"]
        )
        videos = CounterMetricFamily("ytingest_videos", "videos by outcome", labels=["status"])
        for status in ("done", "failed", "skipped"):
            videos.add_metric([status], float(snap[status]))
        yield videos
        yield CounterMetricFamily(
            "ytingest_asr_redecoded_chunks",
            "speech chunks whose uncovered tails the model decoded again",
            value=float(snap.get("asr_redecoded_chunks", 0)),
        )
        yield GaugeMetricFamily("ytingest_cpu_percent", "system CPU use", value=snap["cpu_percent"])
        yield GaugeMetricFamily(
            "ytingest_rss_bytes", "resident memory of the engine", value=snap["rss_bytes"]
        )
        yield GaugeMetricFamily(
            "ytingest_audio_dir_bytes", "audio waiting on disk", value=snap["audio_dir_bytes"]
        )
        sm = GaugeMetricFamily("ytingest_gpu_sm_ratio", "GPU SM utilisation", labels=["gpu"])
        vram = GaugeMetricFamily("ytingest_gpu_vram_used_bytes", "GPU memory used", labels=["gpu"])
        for gpu in snap["gpus"]:
            sm.add_metric([str(gpu["index"])], gpu["sm"])
            vram.add_metric([str(gpu["index"])], gpu["vram_used"])
        yield sm
        yield vram
        verdict = GaugeMetricFamily(
            "ytingest_bottleneck", "1 for the stage named the bottleneck", labels=["stage"]
        )
        verdict.add_metric([snap["verdict"].get("stage", "none")], 1.0)
        yield verdict
        yield from _model_metrics(snap)
        if budget := snap.get("budget"):
            yield from _budget_metrics(budget)


def _budget_metrics(b: dict[str, Any]) -> Iterator[Metric]:
    """The run's request budget (DOWNLOAD_RATE_GLOBAL): its rate, its use, the next turn, waiters."""
    yield GaugeMetricFamily(
        "ytingest_budget_per_hour",
        "request budget: download starts (and listing units) per hour",
        value=b["per_hour"],
    )
    used = GaugeMetricFamily(
        "ytingest_budget_used_last_hour", "budget units taken in the last hour", labels=["kind"]
    )
    used.add_metric(["download"], b["downloads_last_hour"])
    used.add_metric(["listing"], b["listing_last_hour"])
    yield used
    yield GaugeMetricFamily(
        "ytingest_budget_next_start_seconds",
        "seconds until the budget allows the next start",
        value=b["next_start_in_s"],
    )
    yield GaugeMetricFamily(
        "ytingest_budget_waiting", "downloads and listings waiting for a turn", value=b["waiting"]
    )


def _model_metrics(snap: dict[str, Any]) -> Iterator[Metric]:
    """The model stage as a few unlabelled gauges: a label per video id would grow without bound."""
    videos = snap.get("in_model") or []
    fractions = [v["fraction"] for v in videos if v.get("fraction") is not None]
    yield GaugeMetricFamily(
        "ytingest_audio_left_seconds",
        "audio-seconds still to transcribe: queued up to the model and left in its videos",
        value=snap.get("audio_left_s", 0.0),
    )
    yield GaugeMetricFamily("ytingest_videos_in_model", "videos in the model stage", value=len(videos))
    yield GaugeMetricFamily(
        "ytingest_model_progress_min_fraction",
        "least-advanced video in the model stage, 0..1 (1 when none or no length is known)",
        value=min(fractions, default=1.0),
    )
    yield GaugeMetricFamily(
        "ytingest_model_quiet_seconds",
        "seconds since the model stage last made progress (alert on this with videos in the model)",
        value=snap.get("model_quiet_s", 0.0) if videos else 0.0,
    )
    rate = snap.get("model_audio_s_per_s")
    if rate is not None:
        yield GaugeMetricFamily(
            "ytingest_model_audio_seconds_per_second", "the model's recent audio rate", value=rate
        )
    eta = snap.get("eta_s")
    if eta is not None:
        yield GaugeMetricFamily("ytingest_eta_seconds", "seconds until the run is done, estimated", value=eta)


def host_name(header: str) -> str | None:
    """The name in a Host header (``name``, ``name:port``, ``[v6]``, ``[v6]:port``), lower-cased;
    None for anything else (a user part, a bad port, stray brackets)."""
    if header.startswith("["):
        name, bracket, rest = header[1:].partition("]")
        if not bracket:
            return None
    else:
        name, colon, port = header.partition(":")
        rest = colon + port
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    if not name or any(c in name for c in "@/[]\\ "):
        return None
    return name.lower()


def host_guard(allowed: frozenset[str]) -> Middleware:
    """A middleware that answers 421 to a request whose Host names none of ``allowed``, before any
    handler runs: a web page elsewhere that rebinds its own name to 127.0.0.1 reads nothing."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if host_name(request.headers.get("Host", "")) not in allowed:
            names = ", ".join(sorted(allowed))
            return web.Response(status=421, text=f"this server answers only for {names}\n")
        return await handler(request)

    return guard


class _ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger, except that a malformed or oversized request (a line or header too
    long: the client's fault, answered 400) is one warning line, not a traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            log.warning("http_bad_request", status=exc.code, reason=str(exc.message)[:200])
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


async def serve_app(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on host:port (0: any free port); return the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None, logger=_ServerLog(logging.getLogger("aiohttp.server")))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])


class MetricsServer:
    """A tiny aiohttp app; ``status`` returns the document ``/status`` serves."""

    def __init__(self, status: StatusSource, host: str = "127.0.0.1", port: int = 0) -> None:
        self._status = status
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(SnapshotCollector(status))
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        guard = [] if self.host in WILDCARD else [host_guard(LOOPBACK | {self.host.lower().strip("[]")})]
        app = web.Application(middlewares=guard)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/status", self._status_json)
        try:
            self._runner, self.port = await serve_app(app, self.host, self.port)
        except OSError as exc:
            raise ConfigError(
                f"--metrics-port: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def _status_json(self, _request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(self._status()), content_type="application/json")
