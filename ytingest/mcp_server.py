"""``ytingest mcp``: the database as a read-only MCP server (the official ``mcp`` SDK's ``MCPServer``).

Tools: ``search`` (the CLI's modes and filters; hits with a timestamped link and their neighbouring
text), ``get_transcript`` (a stored video's rows, paged), ``list_channels``, ``list_videos`` and
``list_speakers``; each stored transcript is also a resource, ``ytingest://transcript/{video_id}``.
Every tool calls the same ``Engine`` reads as the CLI and the web app, and nothing here writes.

Over stdio the protocol owns stdout: the SDK points fd 1 at stderr while it serves, and the CLI's
logging already goes to stderr. Over streamable HTTP the server binds 127.0.0.1 by default and, on a
loopback address, answers only requests addressed to a loopback name (the SDK's DNS-rebinding
protection), as ``ytingest serve`` does. A bad argument comes back as a tool error of one line;
database errors are redacted first (a ``DATABASE_URL`` password never reaches a client).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field, ValidationError

from ytingest.engine import Engine
from ytingest.errors import ConfigError, YtingestError
from ytingest.export import render
from ytingest.logs import get_logger, redact
from ytingest.models.embedder import embed_model_name
from ytingest.monitor.http import LOOPBACK
from ytingest.search import Mode, parse_day, query_options

log = get_logger()

TRANSCRIPT_URI = "ytingest://transcript/{video_id}"
HTTP_PATH = "/mcp"
MAX_PAGE = 1000  # rows per get_transcript page, videos per list_videos page
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
INSTRUCTIONS = (
    "Search and read a ytingest transcript database (YouTube channels transcribed, with speakers). "
    "Use `search` to find passages (each hit has a link that opens the video at that second), "
    "`get_transcript` to read a video's rows in order, and the list tools to see what is stored."
)
_LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
_LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


def _one_line(exc: BaseException) -> str:
    """The error's first line, passwords and cookies masked."""
    lines = redact(str(exc)).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Our errors (bad arguments, the database away) become one-line tool errors for the client."""
    try:
        yield
    except YtingestError as exc:
        raise ToolError(_one_line(exc)) from None


def _json_safe(value: Any) -> Any:
    """Rows straight from the database, with dates and times as ISO strings."""
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
    )


# the search tool's parameters are SearchQuery's options (``query`` is its text): described there
ABOUT = {name: option.help for name, option in query_options().items()}


def _day(value: str | None) -> date | None:
    return None if value is None else parse_day(value)


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ConfigError(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise ConfigError("offset must be 0 or more")


class _OneLineErrors(MCPServer[Any]):
    """Arguments that fail a tool's schema: one line per field (pydantic's report spans several)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            wrong = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.__cause__.errors()
            )
            raise ToolError(f"bad arguments for {name}: {wrong}") from exc.__cause__


def build_server(engine: Engine, *, embed_model: str | None = None) -> MCPServer[Any]:
    """The MCP server over a started ``engine``; ``embed_model``: the stored name of the engine's
    embedder, whose vectors searches compare with (None: the one stored model of that size)."""
    server = _OneLineErrors("ytingest", instructions=INSTRUCTIONS)

    @server.tool(annotations=READ_ONLY)
    async def search(
        query: Annotated[str, Field(description='words, "an exact phrase", -excluded')],
        mode: Annotated[Mode, Field(description=ABOUT["mode"])] = "hybrid",
        speaker: Annotated[str | None, Field(description=ABOUT["speaker"])] = None,
        channel: Annotated[str | None, Field(description=ABOUT["channel"])] = None,
        video: Annotated[str | None, Field(description=ABOUT["video"])] = None,
        since: Annotated[str | None, Field(description=ABOUT["since"])] = None,
        until: Annotated[str | None, Field(description=ABOUT["until"])] = None,
        min_score: Annotated[float | None, Field(description=ABOUT["min_score"])] = None,
        limit: Annotated[int, Field(description=ABOUT["limit"])] = 10,
        lang: Annotated[str | None, Field(description=ABOUT["lang"])] = None,
    ) -> dict[str, Any]:
        """Find transcript segments by meaning and by words, best first. Each hit has the video's id,
        title and channel, the segment's start/end seconds, text and speaker, the text just before
        and after it, and `url`: a link that opens the video at that second."""
        with _tool_errors():
            hits = await engine.search(
                query,
                mode=mode,
                speaker=speaker,
                channel=channel,
                video=video,
                since=_day(since),
                until=_day(until),
                min_score=min_score,
                limit=limit,
                embed_model=embed_model,
                lang=lang,
            )
        return {"hits": [h.to_dict() for h in hits]}

    @server.tool(annotations=READ_ONLY)
    async def get_transcript(
        video_id: Annotated[str, Field(description="a stored video's id (see list_videos)")],
        offset: Annotated[int, Field(description="first row to return (0: the start)")] = 0,
        limit: Annotated[int, Field(description=f"rows per page (1-{MAX_PAGE})")] = 200,
    ) -> dict[str, Any]:
        """A stored video's transcript rows in order (start/end seconds, text, speaker), one page at
        a time: `next_offset` is the offset of the next page, null after the last."""
        with _tool_errors():
            _page(limit, offset)
            video, rows = await _stored(engine, video_id)
        page = json.loads(render(rows[offset : offset + limit], "json", video=video))
        end = offset + len(page)
        return {
            "video": _about(video),
            "total": len(rows),
            "offset": offset,
            "next_offset": end if end < len(rows) else None,
            "rows": page,
        }

    @server.tool(annotations=READ_ONLY)
    async def list_channels() -> dict[str, Any]:
        """Each channel: its URL and name, videos done, failed and pending, hours stored, last run."""
        with _tool_errors():
            return {"channels": _json_safe(await engine.channels())}

    @server.tool(annotations=READ_ONLY)
    async def list_videos(
        channel: Annotated[str | None, Field(description="only videos of this channel URL")] = None,
        offset: Annotated[int, Field(description="first video to return")] = 0,
        limit: Annotated[int, Field(description=f"videos per page (1-{MAX_PAGE})")] = 100,
    ) -> dict[str, Any]:
        """Known videos, newest upload first: id, title, channel, status, segments, upload date,
        language, and `transcript`: the resource URI of a stored one's transcript."""
        with _tool_errors():
            _page(limit, offset)
            videos = _json_safe(await engine.videos(channel=channel))
        for v in videos:
            v["transcript"] = TRANSCRIPT_URI.format(video_id=v["id"]) if v["status"] == "done" else None
        end = offset + limit
        return {
            "total": len(videos),
            "next_offset": end if end < len(videos) else None,
            "videos": videos[offset:end],
        }

    @server.tool(annotations=READ_ONLY)
    async def list_speakers() -> dict[str, Any]:
        """Enrolled voices (by name) and anonymous ones (unknown-N, per channel), with segment counts."""
        with _tool_errors():
            report: dict[str, Any] = _json_safe(await engine.speakers())
        return report

    @server.resource(
        TRANSCRIPT_URI, name="transcript", mime_type="application/json", description="A stored transcript"
    )
    async def transcript(video_id: str) -> str:
        """A stored video's whole transcript as JSON rows (what `ytingest export --format json` writes)."""
        try:
            video, rows = await _stored(engine, video_id)
        except ConfigError as exc:
            raise ResourceNotFoundError(_one_line(exc)) from None
        except YtingestError as exc:
            raise ResourceError(_one_line(exc)) from None
        return render(rows, "json", video=video)

    return server


async def _stored(engine: Engine, video_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if "\x00" in video_id:
        raise ConfigError("a video id cannot hold a NUL character")
    found = await engine.database.video_segments(video_id)
    if found is None:
        raise ConfigError(f"video {video_id!r} is not stored")
    return found


def _about(video: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "title", "channel", "channel_name", "webpage_url", "duration", "upload_date", "language")
    about: dict[str, Any] = _json_safe({k: video.get(k) for k in keys})
    return about


async def serve_mcp(
    engine: Engine,
    *,
    http: bool = False,
    host: str = "127.0.0.1",
    port: int = 8766,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``engine``'s database over stdio (until the client closes it) or streamable HTTP on
    host:port (0: any free port; until cancelled, ``ready`` gets the URL)."""
    server = build_server(engine, embed_model=embed_model_name(engine.settings.embed_model))
    if not http:
        await server.run_stdio_async()
        return
    await _serve_http(server, host, port, ready)


async def _serve_http(
    server: MCPServer[Any], host: str, port: int, ready: Callable[[str], None] | None
) -> None:
    import uvicorn  # the SDK's own HTTP server: loaded only for --http

    local = host in LOOPBACK
    security = (
        TransportSecuritySettings(allowed_hosts=_LOOPBACK_HOSTS, allowed_origins=_LOOPBACK_ORIGINS)
        if local
        else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, transport_security=security, host=host)
    sock = _bind(host, port)
    # log_config=None: uvicorn's records go through the CLI's one stderr handler, no access log.
    # uvicorn catches SIGINT/SIGTERM while it serves: the first stops it gracefully, a second SIGINT at once
    web = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    bound = sock.getsockname()[1]  # listening already: a client that connects now waits in the backlog
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}{HTTP_PATH}"
    log.info("mcp_listening", url=url)
    if not local:
        log.warning(
            "mcp_listening_beyond_this_machine", host=host, reason="every transcript is readable there"
        )
    if ready is not None:
        ready(url)
    try:
        await web.serve(sockets=[sock])
    finally:
        web.should_exit = True
        sock.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; an address not on this machine or a port in use: ConfigError."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock
