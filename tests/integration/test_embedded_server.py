"""The embedded PostgreSQL outlives no run: an orphan of a SIGKILLed user is adopted and stopped,
while a server another live process uses keeps running."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from ytingest.db.embedded import STARTS_FILE, USERS_FILE, EmbeddedPostgres

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

# another process using the server: starts EmbeddedPostgres, prints the URI, then waits to be killed
USER = """
import asyncio, sys
from pathlib import Path
from ytingest.db.embedded import EmbeddedPostgres

async def main() -> None:
    print(await EmbeddedPostgres(Path(sys.argv[1])).start(), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def server_processes(pg_dir: Path) -> list[psutil.Process]:
    """The postmaster(s) started with ``-D pg_dir`` and all their workers."""
    data_dir = str(pg_dir.resolve())
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if (
            cmd
            and Path(cmd[0]).name == "postgres"
            and "-D" in cmd[:-1]
            and cmd[cmd.index("-D") + 1] == data_dir
        ):
            try:
                found += [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
    return found


def wait_gone(procs: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    """Those still running after ``timeout`` seconds."""
    alive: list[psutil.Process] = psutil.wait_procs(procs, timeout=timeout)[1]
    return alive


async def select_one(uri: str) -> int:
    conn = await asyncpg.connect(uri)
    try:
        value: int = await conn.fetchval("SELECT 1")
        return value
    finally:
        await conn.close()


async def start_and_check(pg_dir: Path) -> EmbeddedPostgres:
    pg = EmbeddedPostgres(pg_dir)
    assert await select_one(await pg.start()) == 1
    return pg


class Users:
    """Other processes using the server in ``pg_dir``; what a test leaves running is stopped at the end."""

    def __init__(self, pg_dir: Path) -> None:
        self.pg_dir = pg_dir
        self.procs: list[subprocess.Popen[str]] = []

    def start(self) -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", USER, str(self.pg_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        uri = proc.stdout.readline().strip()
        assert uri.startswith("postgresql://"), uri
        return proc, uri

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(10)
            if proc.stdout:
                proc.stdout.close()
        for leftover in server_processes(self.pg_dir):
            leftover.kill()


@pytest.fixture
def users(tmp_path: Path) -> Iterator[Users]:
    u = Users(tmp_path / "pg")
    yield u
    u.close()


def test_a_server_orphaned_by_sigkill_is_adopted_and_stopped(users: Users) -> None:
    """The user that started the server is SIGKILLed; the next one attaches, and on stop() it is gone."""
    proc, _ = users.start()
    proc.kill()
    proc.wait(10)
    orphaned = server_processes(users.pg_dir)
    assert orphaned, "the killed user's server should still be running"
    assert json.loads((users.pg_dir / USERS_FILE).read_text()) == [proc.pid]

    async def adopt() -> None:
        pg = await start_and_check(users.pg_dir)
        await pg.stop()

    asyncio.run(adopt())
    assert not wait_gone(orphaned), "the adopted server survived stop()"
    assert not server_processes(users.pg_dir)
    assert json.loads((users.pg_dir / USERS_FILE).read_text()) == []


def test_a_server_another_live_process_uses_keeps_running(users: Users) -> None:
    """Two users at once: the first to stop leaves the server up; once the other is killed, it is adopted."""
    proc, uri = users.start()

    async def come_and_go() -> None:
        pg = await start_and_check(users.pg_dir)
        await pg.stop()

    asyncio.run(come_and_go())
    time.sleep(0.5)
    running = server_processes(users.pg_dir)
    assert running, "stop() stopped a server another live process uses"
    assert asyncio.run(select_one(uri)) == 1

    proc.kill()
    proc.wait(10)
    asyncio.run(come_and_go())
    assert not wait_gone(running)


def test_a_reused_pid_is_not_taken_for_a_live_user(users: Users) -> None:
    """A dead user's pid now names an unrelated process (another start time): the server is adopted."""
    proc, _ = users.start()
    proc.kill()
    proc.wait(10)
    orphaned = server_processes(users.pg_dir)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], text=True)
    users.procs.append(stranger)
    starts = json.loads((users.pg_dir / STARTS_FILE).read_text())
    (users.pg_dir / USERS_FILE).write_text(json.dumps([stranger.pid]))
    (users.pg_dir / STARTS_FILE).write_text(json.dumps({str(stranger.pid): starts[str(proc.pid)]}))

    async def adopt() -> None:
        pg = await start_and_check(users.pg_dir)
        await pg.stop()

    asyncio.run(adopt())
    assert not wait_gone(orphaned)
    assert stranger.poll() is None  # left alone


def test_two_handles_in_one_process_share_the_server_until_the_last_stops(tmp_path: Path) -> None:
    """The first of two EmbeddedPostgres on one data dir to stop leaves it up for the other."""

    async def both() -> list[psutil.Process]:
        first = await start_and_check(tmp_path / "pg")
        second = EmbeddedPostgres(tmp_path / "pg")
        uri = await second.start()
        running = server_processes(tmp_path / "pg")
        await first.stop()
        assert await select_one(uri) == 1
        await second.stop()
        return running

    running = asyncio.run(both())
    assert running and not wait_gone(running)
