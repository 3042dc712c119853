"""``ytingest serve``: a read-only web app over the database (search) and a running engine (live run).

Pages: ``/`` (search, grouped by video, with a player that opens at the hit's second) and ``/run``
(what ``ytingest top`` shows, redrawn by ``static/run.js`` from ``/api/status``). JSON under ``/api/``:
``search`` (exactly ``ytingest search --json``), ``videos``, ``channels``, ``status`` (the running
engine's ``/status``, fetched server-side from ``run_url``; with no run answering, the last run's
final document from ``YTINGEST_HOME/last-run.json``, or an empty state saying how to start one).
Only GET routes; every response carries a Content-Security-Policy that allows scripts and styles
from this origin only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import ClientSession, ClientTimeout, web
from jinja2 import Environment

from ytingest.errors import ConfigError, YtingestError
from ytingest.logs import get_logger
from ytingest.monitor.http import LOOPBACK, host_name, serve_app
from ytingest.monitor.last_run import last_run_path, read_last_run
from ytingest.search import MODES, group_by_video, terms
from ytingest.web.params import SEARCH_PARAMS, search_query, text
from ytingest.web.render import STATIC, environment, render
from ytingest.web.status import fetch_status, reduced

if TYPE_CHECKING:
    from ytingest.engine import Engine

log = get_logger()

ENGINE: web.AppKey[Engine] = web.AppKey("engine")
RUN_URL: web.AppKey[str | None] = web.AppKey("run_url")
EMBED_MODEL: web.AppKey[str | None] = web.AppKey("embed_model")
TEMPLATES = web.AppKey("templates", Environment)
CLIENT = web.AppKey("client", ClientSession)

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src http: https:",  # audio plays from wherever the source serves it
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
STATUS_TIMEOUT = ClientTimeout(total=2.0)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(
    engine: Engine, *, run_url: str | None = None, local_only: bool = True, embed_model: str | None = None
) -> web.Application:
    """The web app over a started ``engine``; ``run_url``: a ``stream --metrics-port`` base URL;
    ``embed_model``: the stored name of the engine's embedder, whose vectors searches compare with
    (None: the one stored model of the query vector's size).
    ``local_only``: answer only requests addressed to a loopback name (a web page elsewhere that
    rebinds its own host name to 127.0.0.1 cannot read the app: DNS rebinding)."""
    if run_url is not None:
        parts = urlsplit(run_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
            raise ConfigError(
                "--run-url must be an http(s) URL without a user or password, such as http://127.0.0.1:9464"
            )
    app = web.Application(middlewares=[_loopback_host, _errors] if local_only else [_errors])
    app[ENGINE] = engine
    app[RUN_URL] = run_url.rstrip("/") if run_url else None
    app[EMBED_MODEL] = embed_model
    app[TEMPLATES] = environment()
    app.cleanup_ctx.append(_client)
    app.on_response_prepare.append(_secure)
    app.router.add_get("/", search_page, name="search")
    app.router.add_get("/run", run_page, name="run")
    app.router.add_get("/api/search", api_search)
    app.router.add_get("/api/videos", api_videos)
    app.router.add_get("/api/channels", api_channels)
    app.router.add_get("/api/status", api_status)
    app.router.add_static("/static", STATIC, name="static")
    return app


async def serve(
    engine: Engine,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    run_url: str | None = None,
    ready: Callable[[str], None] | None = None,
    embed_model: str | None = None,
) -> None:
    """Serve the app on host:port (0: any free port) until cancelled; logs ``web_listening`` with the
    URL and passes it to ``ready``. A port in use or an address not on this machine: ConfigError."""
    app = make_app(engine, run_url=run_url, local_only=host in LOOPBACK, embed_model=embed_model)
    try:
        runner, bound = await serve_app(app, host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/"
    log.info("web_listening", url=url, run_url=run_url)
    if host not in LOOPBACK:
        log.warning(
            "web_listening_beyond_this_machine", host=host, reason="every transcript is readable there"
        )
    if ready is not None:
        ready(url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


# ---- plumbing ---------------------------------------------------------------------------------


async def _client(app: web.Application) -> AsyncIterator[None]:
    """One HTTP client for the status proxy, closed with the app."""
    async with ClientSession(timeout=STATUS_TIMEOUT) as session:
        app[CLIENT] = session
        yield


async def _secure(_request: web.Request, response: web.StreamResponse) -> None:
    """Security headers on every response: pages, JSON, static files and errors alike."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def _loopback_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request whose Host is not a loopback name (421), before any handler runs."""
    if host_name(request.headers.get("Host", "")) not in LOOPBACK:
        return web.Response(status=421, text="this server answers only for 127.0.0.1 and localhost\n")
    return await handler(request)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bad input → 400, our own failures (database down …) → 503, as one line: JSON under /api/."""
    try:
        return await handler(request)
    except ConfigError as exc:
        return _error(request, 400, str(exc))
    except YtingestError as exc:
        log.warning("web_request_failed", path=request.path, reason=str(exc))
        return _error(request, 503, str(exc))


def _error(request: web.Request, status: int, message: str) -> web.Response:
    if request.path.startswith("/api/"):
        return web.json_response({"error": message}, status=status)
    body = render(request.app[TEMPLATES], "error.html", status=status, message=message)
    return web.Response(text=body, status=status, content_type="text/html")


def _engine(request: web.Request) -> Engine:
    return request.app[ENGINE]


# ---- pages ------------------------------------------------------------------------------------


def channel_name(url: str, name: object = None) -> str:
    """What a channel is called on the page: the uploader's name where the ledger has one, else
    its URL's host (and port) and path, never a user or password."""
    if isinstance(name, str) and name.strip():
        return name.strip()
    parts = urlsplit(url)
    try:
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    except ValueError:  # a port that is not a number
        host = parts.hostname or ""
    return (host + parts.path) or url.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class Choices:
    """The search filters' choices, keyed by what the page shows (and the form sends back)."""

    enrolled: list[str]
    voices: dict[str, tuple[str, str | None]]  # "unknown-1 (Channel A)" → (label, channel URL)
    channels: dict[str, str]  # channel name → URL

    def query(self, params: Mapping[str, str]) -> dict[str, str]:
        """The form's values with a shown channel name as its URL and a channel's voice as its label
        and channel (a voice of another channel than the one chosen: ConfigError)."""
        out = {k: params.get(k, "") for k in SEARCH_PARAMS}
        channel = out["channel"].strip()
        out["channel"] = self.channels.get(channel, channel)
        label, voice_channel = self.voices.get(out["speaker"].strip(), (None, None))
        if label is not None:
            out["speaker"] = label
            if voice_channel and out["channel"] and out["channel"] != voice_channel:
                raise ConfigError(f"{params.get('speaker')} is a voice of another channel: pick its channel")
            out["channel"] = voice_channel or out["channel"]
        return out


async def _choices(engine: Engine) -> Choices:
    """The filter choices: enrolled speakers, each channel's anonymous voices, channels by name."""
    speakers, rows = await asyncio.gather(engine.speakers(), engine.channels())
    enrolled = [str(p["name"]) for p in speakers.get("enrolled", [])]
    named = [(channel_name(str(c["url"]), c.get("name")), str(c["url"])) for c in rows]
    shown = [n for n, _ in named]
    channels: dict[str, str] = {}
    for name, url in named:  # two channels of one name: each with its host and path
        channels[name if shown.count(name) == 1 else f"{name} · {channel_name(url)}"] = url
    by_url = {url: name for name, url in channels.items()}
    voices: dict[str, tuple[str, str | None]] = {}
    for p in speakers.get("unknown", []):  # "unknown-1" is per channel: each is another voice
        label, url = str(p["label"]), str(p.get("channel") or "")
        shown_as = f"{label} ({by_url.get(url) or channel_name(url)})" if url else label
        voices[shown_as] = (label, url or None)
    return Choices(enrolled, voices, channels)


async def search_page(request: web.Request) -> web.Response:
    """The search form; with ``q``, the results grouped by video (400 and the form on bad input)."""
    engine = _engine(request)
    params = request.query
    choices = await _choices(engine)
    form = {name: params.get(name, "")[:500] for name in SEARCH_PARAMS}
    groups, error, status = [], None, 200
    searched = bool(params.get("q", "").strip())
    if searched:
        try:
            hits = await engine.search(
                search_query(choices.query(params), embed_model=request.app[EMBED_MODEL])
            )
            groups = group_by_video(hits)
        except ConfigError as exc:
            error, status = str(exc), 400
    page = render(
        request.app[TEMPLATES],
        "search.html",
        form=form,
        modes=MODES,
        enrolled=choices.enrolled,
        unknown=list(choices.voices),
        channels=list(choices.channels),
        searched=searched,
        groups=groups,
        hits=sum(len(g.hits) for g in groups),
        terms=terms(form["q"]) if searched else [],
        error=error,
    )
    return web.Response(text=page, status=status, content_type="text/html")


async def run_page(request: web.Request) -> web.Response:
    """The live run view; ``static/run.js`` fills it from ``/api/status`` every second."""
    page = render(request.app[TEMPLATES], "run.html", run_url=request.app[RUN_URL])
    return web.Response(text=page, content_type="text/html")


# ---- JSON API ---------------------------------------------------------------------------------


async def api_search(request: web.Request) -> web.Response:
    """Exactly what ``ytingest search --json`` prints for the same query and filters."""
    query = search_query(request.query, embed_model=request.app[EMBED_MODEL])
    hits = await _engine(request).search(query)
    return web.json_response([h.to_dict() for h in hits])


async def api_videos(request: web.Request) -> web.Response:
    videos = await _engine(request).videos(channel=text(request.query, "channel"))
    return web.json_response(videos, dumps=_dumps)


async def api_channels(request: web.Request) -> web.Response:
    return web.json_response(await _engine(request).channels(), dumps=_dumps)


async def api_status(request: web.Request) -> web.Response:
    """The running engine's ``/status`` document; when none answers, the last run's final document
    (``finished``/``failed``, with ``live`` saying why no engine answered), else
    ``{"state": "unreachable" | "unconfigured", "message"}``. Each carries ``start``: the command
    that starts a run this page can watch."""
    run_url = request.app[RUN_URL]
    doc = await fetch_status(request.app[CLIENT], run_url)
    if doc["state"] in ("unreachable", "unconfigured"):
        home = _engine(request).settings.ytingest_home
        last = await asyncio.to_thread(read_last_run, home)
        if last is not None:
            doc = {**reduced(last, str(last_run_path(home))), "live": doc["state"]}
    port = urlsplit(run_url).port if run_url else None
    doc["start"] = f"ytingest stream <channel URL> --metrics-port {port or 9464}" + (
        "" if run_url else " and `ytingest serve --run-url http://127.0.0.1:9464`"
    )
    return web.json_response(doc)


def _dumps(value: Any) -> str:
    """JSON with dates and times as ISO strings (rows straight from the database)."""
    return json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
