"""`ytingest db start|stop|url`'s server on real PostgreSQL: TCP with a password, pgvector, idempotent
start, a life of its own beyond the starting process, and a password kept out of sight."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from pydantic import SecretStr

from ytingest.db.embedded import EmbeddedPostgres
from ytingest.db.server import PASSWORD_FILE, STATE_FILE, ServerInfo, server_info, start_server, stop_server
from ytingest.errors import ConfigError

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

START = """
import sys
from pathlib import Path
from ytingest.db.server import start_server
print(start_server(Path(sys.argv[1])).url(), flush=True)
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir whose server, if a test started one, is stopped afterwards."""
    path = tmp_path / "pg"
    yield path
    stop_server(path)


async def _query(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def query(url: str, sql: str = "SELECT 1") -> object:
    return asyncio.run(_query(url, sql))


def with_password(info: ServerInfo, password: str) -> str:
    return info.url().replace(info.password.get_secret_value(), password)


def test_the_url_names_a_reachable_host() -> None:
    """A wildcard listen address becomes this host's name; an IPv6 address is bracketed."""
    secret = SecretStr("p/w")
    wild = ServerInfo(host="0.0.0.0", port=5, pid=1, data_dir=Path("d"), password=secret)
    assert wild.url() == f"postgresql://postgres:p%2Fw@{socket.gethostname()}:5/postgres"
    assert "@[::1]:5/" in ServerInfo(host="::1", port=5, pid=1, data_dir=Path("d"), password=secret).url()


def test_start_serves_pgvector_over_tcp_with_the_password(data_dir: Path) -> None:
    """The URL logs in over TCP, CREATE EXTENSION vector works, and only 127.0.0.1 is bound."""
    info = start_server(data_dir)
    assert info.url().startswith(f"postgresql://postgres:{info.password.get_secret_value()}@127.0.0.1:")
    query(info.url(), "CREATE EXTENSION IF NOT EXISTS vector")
    assert query(info.url(), "SELECT '[3,4]'::vector <-> '[0,0]'::vector") == 5.0
    listening = [c.laddr for c in psutil.Process(info.pid).net_connections("inet") if c.status == "LISTEN"]
    assert listening and {addr.ip for addr in listening} == {"127.0.0.1"}
    assert {addr.port for addr in listening} == {info.port}


def test_a_wrong_or_missing_password_is_refused(data_dir: Path) -> None:
    """TCP logins need the password (scram-sha-256): a wrong one and none at all both fail."""
    info = start_server(data_dir)
    with pytest.raises(asyncpg.InvalidPasswordError):
        query(with_password(info, "not-the-password"))
    with pytest.raises(asyncpg.InvalidPasswordError):
        query(f"postgresql://postgres@127.0.0.1:{info.port}/postgres")


def test_a_second_start_returns_the_running_server(data_dir: Path) -> None:
    """server_info equals what start returned, and starting again (same or no port) changes nothing."""
    info = start_server(data_dir)
    assert server_info(data_dir) == info
    assert start_server(data_dir) == info
    assert start_server(data_dir, port=info.port, listen="127.0.0.1") == info


def test_another_port_or_address_while_running_is_a_config_error(data_dir: Path) -> None:
    """A running server is not moved: asking for another port or address says so, on one line."""
    info = start_server(data_dir)
    for kwargs in ({"port": info.port + 1}, {"listen": "0.0.0.0"}):
        with pytest.raises(ConfigError, match="already runs on") as err:
            start_server(data_dir, **kwargs)
        assert "\n" not in str(err.value)
    assert server_info(data_dir) == info


def test_a_busy_port_is_a_config_error(data_dir: Path) -> None:
    """An explicit port someone else listens on fails clearly, before anything is created."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port}") as err:
            start_server(data_dir, port=port)
    assert "\n" not in str(err.value)
    assert server_info(data_dir) is None and not data_dir.exists()


def test_a_listen_value_that_is_not_an_address_is_refused(data_dir: Path) -> None:
    """pg_ctl passes -o through a shell: anything but an address, host name or * is refused up front."""
    for listen in ("127.0.0.1; touch pwned", "$(id)", "", "a b"):
        with pytest.raises(ConfigError, match="--listen"):
            start_server(data_dir, listen=listen)
    assert not data_dir.exists()


def test_the_server_outlives_the_process_that_started_it(data_dir: Path) -> None:
    """Started by a process that then exits, the server still answers on its URL."""
    proc = subprocess.run(
        [sys.executable, "-c", START, str(data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    url = proc.stdout.strip()
    info = server_info(data_dir)
    assert info is not None and info.url() == url
    assert query(url) == 1


def test_stop_ends_the_server(data_dir: Path) -> None:
    """stop: the postmaster exits, server_info is None, the URL no longer connects; a second stop is False."""
    info = start_server(data_dir)
    state = (data_dir / STATE_FILE).read_text()
    assert stop_server(data_dir) is True
    assert not psutil.pid_exists(info.pid) or psutil.Process(info.pid).status() == psutil.STATUS_ZOMBIE
    assert server_info(data_dir) is None
    with pytest.raises(OSError):
        query(info.url())
    assert stop_server(data_dir) is False
    (data_dir / STATE_FILE).write_text(state)  # a stale state file names no live server
    assert server_info(data_dir) is None


def test_a_restart_keeps_the_password(data_dir: Path) -> None:
    """After stop and start the same password still logs in."""
    first = start_server(data_dir)
    stop_server(data_dir)
    second = start_server(data_dir)
    assert second.password == first.password and second.pid != first.pid
    assert query(second.url()) == 1


def test_the_password_stays_in_its_0600_file(data_dir: Path) -> None:
    """Not in repr(ServerInfo), the state file or the server log; only in the password file, mode 0600."""
    info = start_server(data_dir)
    query(info.url())
    password = info.password.get_secret_value()
    assert password not in repr(info) and password not in str(info)
    assert password not in (data_dir / STATE_FILE).read_text()
    assert json.loads((data_dir / STATE_FILE).read_text()).keys() == {"host", "port", "pid"}
    assert password not in (data_dir / "log").read_text()
    secret = data_dir / PASSWORD_FILE
    assert secret.read_text().strip() == password
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_an_embedded_user_of_the_same_dir_does_not_stop_the_server(data_dir: Path) -> None:
    """EmbeddedPostgres attaching to this server (same data dir) leaves it running when it leaves."""
    info = start_server(data_dir)

    async def come_and_go() -> None:
        pg = EmbeddedPostgres(data_dir)
        await pg.start()  # its socket URI names port 5432, so it cannot log in; it must not stop us either
        await pg.stop()

    asyncio.run(come_and_go())
    assert server_info(data_dir) == info
    assert query(info.url()) == 1
