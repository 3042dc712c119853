"""A small asyncio TCP proxy in front of PostgreSQL that can add latency, reset, refuse or stall.

Tests point DATABASE_URL at ``proxy.dsn`` and flip knobs while the engine runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


@dataclass
class PgProxy:
    """Forwards 127.0.0.1:port to the server of ``upstream_dsn`` (TCP or Unix socket).

    Knobs: ``latency`` seconds added to every chunk each way; ``down``: refuse new
    connections (and ``cut_all()`` drops the open ones); ``reset_on_copy``: drop the
    connection the next time a client starts a COPY (one-shot); ``stall()`` stops forwarding
    until ``resume()``.
    """

    upstream_dsn: str
    latency: float = 0.0
    down: bool = False
    reset_on_copy: bool = False
    resets: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _links: set[asyncio.StreamWriter] = field(default_factory=set)
    _flowing: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._flowing.set()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    @property
    def dsn(self) -> str:
        """The upstream DSN with host/port replaced by the proxy's."""
        parts = urlsplit(self.upstream_dsn)
        user = parts.username or "postgres"
        password = f":{parts.password}" if parts.password else ""
        return f"postgresql://{user}{password}@127.0.0.1:{self.port}{parts.path}"

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(self.upstream_dsn)
        host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
        if host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{parts.port or 5432}")
        return await asyncio.open_connection(host, parts.port or 5432)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> PgProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def take_down(self) -> None:
        """The database "goes away": refuse new connections and reset the open ones."""
        self.down = True
        self.cut_all()

    def cut_all(self) -> None:
        """Reset every open connection now."""
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            writer.transport.abort()
            return
        self._links.update({writer, up_writer})
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, client=True, pair=writer),
                self._pump(up_reader, writer, client=False, pair=up_writer),
            )
        finally:
            for w in (writer, up_writer):
                self._links.discard(w)
                w.transport.abort()

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        *,
        client: bool,
        pair: asyncio.StreamWriter,
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                await self._flowing.wait()
                if self.latency:
                    await asyncio.sleep(self.latency)
                if client and self.reset_on_copy and b"COPY " in data:
                    self.reset_on_copy = False
                    self.resets += 1
                    dst.transport.abort()
                    pair.transport.abort()
                    return
                dst.write(data)
                await dst.drain()
        dst.transport.abort()
