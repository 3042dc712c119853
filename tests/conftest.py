"""Shared fixtures: a PostgreSQL to test against, the local sample channel, and a CLI runner.

Also: every test that starts PostgreSQL, the CLI or the sample channel, and every test under
integration/ and e2e/, is marked ``slow`` (``make test-fast`` skips them); and the session fails if a
process it started (a child, an orphaned grandchild, an embedded PostgreSQL) is still running at its end.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
import structlog

from ytingest.db.embedded import EmbeddedPostgres
from ytingest.testing import ChannelServer, serve_in_thread

EXTERNAL_DSN = os.environ.get("DATABASE_URL")
HERE = Path(__file__).parent
# fixtures that start PostgreSQL, the CLI (models, yt-dlp) or the sample channel for yt-dlp
SLOW_FIXTURES = frozenset({"pg_server", "fresh_dsn", "conn", "cli", "channel"})
SLOW_DIRS = (HERE / "integration", HERE / "e2e")  # the real-component suites
SESSION_MARK = "PYTEST_SESSION_MARK"  # inherited by every process the session starts, daemons too


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``slow`` for every test that starts real components, so ``-m "not slow"`` cannot forget one."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SLOW_FIXTURES or any(item.path.is_relative_to(d) for d in SLOW_DIRS):
            item.add_marker(pytest.mark.slow)


def pytest_configure(config: pytest.Config) -> None:
    """Mark this session's processes: the leak check finds them even once reparented or daemonized."""
    os.environ[SESSION_MARK] = uuid.uuid4().hex


def _started_by_this_session(config: pytest.Config) -> list[psutil.Process]:
    """Our live descendants, processes carrying this session's mark, and PostgreSQL servers in basetemp."""
    me = psutil.Process()
    mark = os.environ.get(SESSION_MARK)
    factory = getattr(config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)  # None: no tmp dir was made, so no server in one
    found = {p.pid: p for p in me.children(recursive=True)}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == me.pid or proc.pid in found:
            continue
        cmdline = proc.info["cmdline"] or []
        data_dir = cmdline[cmdline.index("-D") + 1] if "-D" in cmdline[:-1] else None
        if basetemp is not None and data_dir and Path(data_dir).is_relative_to(basetemp):
            found[proc.pid] = proc
            continue
        try:  # a daemonized or orphaned process is no child of ours, but it inherited the mark
            if mark and proc.environ().get(SESSION_MARK) == mark:
                found[proc.pid] = proc
        except psutil.Error:
            pass
    alive = []
    for proc in found.values():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and not _is_resource_tracker(proc):
                alive.append(proc)  # a zombie is dead already; reaped when we exit
        except psutil.Error:
            pass
    # a PostgreSQL server's own workers go with it
    servers = {p.pid for p in alive if _is_postmaster(p)}
    return [p for p in alive if not _under(p, servers)]


def our_children() -> list[psutil.Process]:
    """This process's children, less multiprocessing's resource tracker (see below)."""
    return [p for p in psutil.Process().children() if not _is_resource_tracker(p)]


def _is_resource_tracker(proc: psutil.Process) -> bool:
    """multiprocessing's resource tracker (the decode pool's spawned workers start it): it lives
    as long as this process, by design, and ends when it does."""
    try:
        return proc.ppid() == os.getpid() and "multiprocessing.resource_tracker" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def _is_postmaster(proc: psutil.Process) -> bool:
    try:
        return "-D" in proc.cmdline() and Path(proc.cmdline()[0]).name == "postgres"
    except (psutil.Error, IndexError):
        return False


def _under(proc: psutil.Process, pids: set[int]) -> bool:
    try:
        return any(parent.pid in pids for parent in proc.parents())
    except psutil.Error:
        return False


def _end(procs: list[psutil.Process]) -> None:
    """Stop them: PostgreSQL by a fast shutdown, the rest by SIGTERM; SIGKILL what is left after 10 s."""
    for proc in procs:
        try:
            proc.send_signal(signal.SIGINT if _is_postmaster(proc) else signal.SIGTERM)
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(procs, timeout=10)
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(left, timeout=5)


LEAKED = pytest.StashKey[list[str]]()


@pytest.hookimpl(trylast=True)  # after the runner's own sessionfinish tore the session fixtures down
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run if anything it started is still running (and stop it, so nothing leaks)."""
    leaked = _started_by_this_session(session.config)
    if not leaked:
        return
    lines = []
    for proc in leaked:
        try:
            lines.append(f"pid {proc.pid}: {' '.join(proc.cmdline())[:300]}")
        except psutil.Error:
            lines.append(f"pid {proc.pid}")
    _end(leaked)
    session.config.stash[LEAKED] = lines
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if session.config.pluginmanager.get_plugin("terminalreporter") is None:
        print("processes left running by the tests:", *lines, sep="\n", file=sys.stderr)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(LEAKED, [])
    if lines:
        title = f"FAILED: {len(lines)} process(es) started by the tests still ran at the end (now stopped)"
        terminalreporter.write_sep("=", title, red=True, bold=True)
        for line in lines:
            terminalreporter.write_line(line, red=True)


def with_database(dsn: str, name: str) -> str:
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


@contextmanager
def database_on(server_dsn: str, prefix: str) -> Iterator[str]:
    """A new, empty database on ``server_dsn`` (its DSN) for the block; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(run_sql(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(server_dsn, name)
    finally:
        asyncio.run(run_sql(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def fresh_dsn(pg_server: str) -> Iterator[str]:
    """A new, empty database on the test server; dropped afterwards."""
    with database_on(pg_server, "ytingest_test") as dsn:
        yield dsn


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
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)


def cli_rows(cli: Cli, sql: str) -> list[dict[str, Any]]:
    """The rows of ``sql`` straight from the CLI's database (DATABASE_URL, or the embedded server
    in its home)."""

    async def read() -> list[dict[str, Any]]:
        server = None
        dsn = cli.env.get("DATABASE_URL")
        if not dsn:
            server = EmbeddedPostgres(cli.home / "pg")
            dsn = await server.start()
        try:
            conn = await asyncpg.connect(dsn)
            try:
                return [dict(r) for r in await conn.fetch(sql)]
            finally:
                await conn.close()
        finally:
            if server is not None:
                await server.stop()

    return asyncio.run(read())


def make_cli(home: Path, dsn: str | None) -> Cli:
    # PYTHONDONTWRITEBYTECODE (set in some CI images) would make every CLI process, its decoder
    # children and workers compile ytingest's sources again (~0.2 s of CPU each, hundreds of
    # processes a run); they write and share their bytecode as any Python install does
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE")}
    env.update(YTINGEST_HOME=str(home), PYTHONUNBUFFERED="1")
    if dsn:
        env["DATABASE_URL"] = dsn
    return Cli(home, env)


def cli_in(home: Path) -> Cli:
    """CLI with its own home: the embedded PostgreSQL in it, or with $DATABASE_URL a new database
    on that server."""
    dsn = None
    if EXTERNAL_DSN:
        name = f"ytingest_e2e_{uuid.uuid4().hex[:12]}"
        asyncio.run(_create_db(EXTERNAL_DSN, name))
        dsn = with_database(EXTERNAL_DSN, name)
    return make_cli(home, dsn)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """CLI with a private home; embedded PostgreSQL unless $DATABASE_URL names a server."""
    return cli_in(tmp_path / "home")


async def run_sql(dsn: str, sql: str) -> None:
    """One statement on its own connection (CREATE/DROP DATABASE cannot run in a transaction)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create_db(admin_dsn: str, name: str) -> None:
    await run_sql(admin_dsn, f'CREATE DATABASE "{name}"')


@pytest.fixture
async def conn(fresh_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(fresh_dsn)
    yield c
    await c.close()


def wait_until_serving(
    proc: subprocess.Popen[Any], url: str, *, timeout_s: float = 60.0, log: Path | None = None
) -> None:
    """Until ``url`` answers; the test fails if ``proc`` (the server) exits first (with ``log``'s
    tail) or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30):
                return
        except (urllib.error.URLError, ConnectionError):
            assert proc.poll() is None, (
                log.read_text()[-2000:] if log is not None else f"{url}: the server exited"
            )
            assert time.monotonic() < deadline, f"{url} did not answer within {timeout_s:.0f} s"
            time.sleep(0.2)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
