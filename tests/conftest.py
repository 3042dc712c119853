"""Shared fixtures: a PostgreSQL to test against, the local sample channel, and a CLI runner."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog

from ytingest.db.embedded import EmbeddedPostgres
from ytingest.testing import ChannelServer, serve_in_thread

EXTERNAL_DSN = os.environ.get("DATABASE_URL")


def _with_database(dsn: str, name: str) -> str:
    """The same server, another database name (keeps query options such as host=)."""
    head, _, tail = dsn.partition("?")
    base = head.rsplit("/", 1)[0] if head.count("/") > 2 else head
    return f"{base}/{name}" + (f"?{tail}" if tail else "")


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """A test that configures logging must not leave a closed capture stream behind."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server DSN: $DATABASE_URL if given, else one embedded server for the whole session."""
    if EXTERNAL_DSN:
        yield EXTERNAL_DSN
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg-session") / "pg")
    dsn = asyncio.run(server.start())
    yield dsn
    asyncio.run(server.stop())


@pytest.fixture
def fresh_dsn(pg_server: str) -> Iterator[str]:
    """A new, empty database on the test server; dropped afterwards."""
    name = f"ytingest_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(pg_server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield _with_database(pg_server, name)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def channel() -> Iterator[ChannelServer]:
    """The bundled six-episode sample channel on 127.0.0.1."""
    with serve_in_thread(ChannelServer()) as server:
        yield server


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def events(self) -> list[dict[str, Any]]:
        """Every stderr line as a JSON log event (fails if a line is not JSON)."""
        return [json.loads(line) for line in self.stderr.splitlines() if line.strip()]


@dataclass
class Cli:
    """Runs ``python -m ytingest`` in a subprocess with its own YTINGEST_HOME."""

    home: Path
    env: dict[str, str]

    def __call__(
        self, *args: str, timeout: float = 240, extra_env: dict[str, str] | None = None
    ) -> CliResult:
        env = {**self.env, **(extra_env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "ytingest", *args],
            capture_output=True, text=True, env=env, timeout=timeout, check=False,
        )  # fmt: skip
        return CliResult(proc.returncode, proc.stdout, proc.stderr)


def make_cli(home: Path, dsn: str | None) -> Cli:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(YTINGEST_HOME=str(home), PYTHONUNBUFFERED="1")
    if dsn:
        env["DATABASE_URL"] = dsn
    return Cli(home, env)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """CLI with a private home; embedded PostgreSQL unless $DATABASE_URL names a server."""
    dsn = None
    if EXTERNAL_DSN:
        dsn = _with_database(EXTERNAL_DSN, f"ytingest_e2e_{uuid.uuid4().hex[:12]}")
        asyncio.run(_create_db(EXTERNAL_DSN, dsn.rsplit("/", 1)[1].split("?")[0]))
    return make_cli(tmp_path / "home", dsn)


async def _create_db(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture
async def conn(fresh_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(fresh_dsn)
    yield c
    await c.close()
