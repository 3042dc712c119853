"""``Store``: the asyncpg pool every query group shares, and its retry and error boundary.

asyncpg and OS errors are mapped to ``StoreError`` / ``ConfigError`` here, at the boundary;
``retried`` runs an idempotent query again while the connection (not the statement) fails.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlsplit

import asyncpg
from pgvector.asyncpg import register_vector

from ytingest.db.schema import migrate, prepare
from ytingest.errors import ConfigError, StoreError
from ytingest.logs import get_logger, redact

log = get_logger()

_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)
# the connection or the server failed, not the statement: worth trying again
_LINK_ERRORS = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
    OSError,
    asyncio.TimeoutError,
    # the server rolled the transaction back to break a lock cycle (a store beside `speakers
    # merge`): the idempotent write is simply run again
    asyncpg.exceptions.DeadlockDetectedError,
)
S = TypeVar("S", bound="Store")
P = ParamSpec("P")
R = TypeVar("R")


def retried(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Retry an idempotent database call while the connection is failing, for up to DB_RETRY_S.

    Every write below is idempotent (upserts, or one transaction that replaces a video's
    rows), so running it again after a reset can neither lose nor duplicate rows.
    """

    @functools.wraps(method)
    async def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        deadline = time.monotonic() + self.retry_s
        attempt = 0
        while True:
            try:
                return await method(self, *args, **kwargs)
            except StoreError as exc:
                attempt += 1
                if not exc.transient or time.monotonic() >= deadline or self._pool is None:
                    raise
                delay = min(5.0, 0.2 * 2 ** min(attempt, 5), max(0.0, deadline - time.monotonic()))
                log.warning(
                    "db_retry", what=method.__name__, attempt=attempt, wait_s=round(delay, 2), reason=str(exc)
                )
                await asyncio.sleep(delay)

    return wrapper  # type: ignore[return-value]  # functools.wraps names the self parameter


@contextmanager
def store_errors(what: str, where: str, *, transient: bool | None = None) -> Iterator[None]:
    """The one boundary: an asyncpg or OS error inside becomes a ``StoreError`` naming ``what`` and
    ``where`` (secrets redacted); transient when the link failed rather than the statement, unless
    ``transient`` says."""
    try:
        yield
    except _DB_ERRORS as exc:
        reason = " ".join(redact(str(exc)).split()) or type(exc).__name__
        link = isinstance(exc, _LINK_ERRORS) if transient is None else transient
        raise StoreError(f"{what} failed at {where}: {reason}", transient=link) from exc


async def server_versions(dsn: str) -> tuple[str, str | None, str | None]:
    """PostgreSQL's version, pgvector's installed in this database (None: not yet) and the one the
    server offers (None: none), creating nothing (``ytingest doctor``). StoreError when it cannot
    connect; ValueError for a DSN that does not parse."""
    with store_errors("connect", describe_dsn(dsn)):
        conn = await asyncpg.connect(dsn, timeout=15)
        try:
            server = await conn.fetchval("SHOW server_version")
            vector = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            offered = await conn.fetchval(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
            )
        finally:
            await conn.close()
    return str(server), vector, offered


def describe_dsn(dsn: str) -> str:
    """A printable name for a DSN: host/database, never the password."""
    parts = urlsplit(dsn)
    host = parts.hostname or dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get(
        "host", "localhost"
    )
    return f"{host}{parts.path or '/'}"


class Store:
    """A pool of DB_WORKERS connections with pgvector's codec, and the schema it was opened on."""

    def __init__(self, dsn: str, *, pool_size: int = 2, retry_s: float = 60.0) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._dim: int | None = None
        self.retry_s = retry_s
        self.where = describe_dsn(dsn)

    async def connect(self, *, connect_timeout: float = 15.0) -> None:
        """Open the pool (with pgvector's codec) and read which embedding size the schema has."""
        try:
            conn = await asyncpg.connect(self._dsn, timeout=connect_timeout)
            try:
                self._dim = await prepare(conn)
            finally:
                await conn.close()
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=1, max_size=self._pool_size, init=register_vector, timeout=connect_timeout
            )
        except ConfigError:
            raise
        except _DB_ERRORS as exc:
            reason = redact(str(exc)) or type(exc).__name__
            raise ConfigError(f"cannot use database at {self.where}: {reason}") from None

    async def connect_one(self, what: str) -> asyncpg.Connection:
        """A connection of its own, outside the pool (the job queue's LISTEN, the download gate's
        session locks); the caller closes it."""
        with store_errors(what, self.where, transient=True):
            return await asyncpg.connect(self._dsn, timeout=15.0)

    @staticmethod
    async def close_one(conn: asyncpg.Connection, grace_s: float = 5.0) -> None:
        """Close a connection from ``connect_one``; one whose link is already gone (a terminated
        backend, a reset) is dropped instead of raising over the error that really ended the run."""
        if conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), grace_s)
        except (TimeoutError, *_DB_ERRORS):
            conn.terminate()

    async def embedding_dim(self) -> int | None:
        """The vector size the schema was first built for; None for a new database."""
        return self._dim

    async def migrate(self, dim: int) -> None:
        """Create or upgrade the schema for ``dim``-d embeddings."""
        async with self._conn("migrate schema") as conn:
            await migrate(conn, dim)
        self._dim = dim

    async def check_dim(self, dim: int) -> None:
        """Any size is welcome: each embedding model's vectors are stored under its name and size
        (``db/embeddings.py``); a name stored before with another size is refused when it stores."""
        if dim < 1:
            raise ConfigError(f"the embedding model gives {dim}-d vectors")

    async def close(self, grace_s: float = 10.0) -> None:
        """Close the pool gracefully; terminate it if that takes longer than ``grace_s``."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        try:
            await asyncio.wait_for(pool.close(), grace_s)
        except (TimeoutError, *_DB_ERRORS):
            pool.terminate()

    @asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise StoreError("database is not connected")
        with store_errors(what, self.where):
            async with self._pool.acquire() as conn:
                yield conn
