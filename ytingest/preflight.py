"""Checks that need no engine, run by the CLI before any database, model or yt-dlp: each bad input
is one ``ConfigError`` line (exit 2) within a second, not a traceback after the models loaded."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from ytingest.config import Settings
from ytingest.errors import ConfigError

SOURCE_SCHEMES = frozenset({"http", "https"})
DATABASE_SCHEMES = frozenset({"postgresql", "postgres"})  # what asyncpg accepts
ENGINE_FREE = frozenset({"db", "doctor", "top"})  # commands that start no Engine (no /metrics)


def preflight(args: argparse.Namespace, settings: Settings) -> None:
    """Every check ``args.command`` needs before it starts work; the first problem is raised.
    ``doctor`` is left alone: it reports each problem as a check of its own."""
    if args.command == "doctor":
        return
    if settings.database_url is not None and args.command != "db":
        check_database_url(settings.database_url.get_secret_value())
    if args.command in ("stream", "enqueue"):
        check_source_url(args.url)
    if getattr(args, "report", None) is not None:
        check_output_file(args.report, "--report")
    if args.command == "export" and args.output is not None:
        check_output_file(args.output, "--output")
    if args.command in ("serve", "db") and args.port is not None:
        check_port(args.port, "--port")
    if args.command == "serve":
        check_free(args.host, args.port, "--port")
    if settings.metrics_port is not None and args.command not in ENGINE_FREE:
        check_port(settings.metrics_port, "--metrics-port")
        check_free(settings.metrics_host, settings.metrics_port, "--metrics-port")


def check_source_url(url: str) -> None:
    """A channel or playlist is an http(s) URL with a host. Refused here: yt-dlp's search prefixes
    (``ytsearch5:``), ``file:``, ``data:``, ``javascript:`` and other schemes, and text without one."""
    shown = url if len(url) <= 80 else url[:77] + "..."
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is not None and parts.scheme.lower() in SOURCE_SCHEMES and host:
        return
    hint = "give the channel's http(s) URL, such as https://www.youtube.com/@name"
    if parts is not None and not parts.scheme and "." in url.split("/", 1)[0] and " " not in url:
        hint = f"did you mean https://{url.strip()}?"
    raise ConfigError(f"cannot list {shown!r}: not an http(s) URL; {hint}")


def check_output_file(path: Path, flag: str) -> None:
    """``path`` can be written: its folder exists and takes a new file, and it is no folder itself."""
    path = path.expanduser()
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder, not a file")
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: the folder {folder} does not exist")
    try:  # a real file, not os.access: root, read-only mounts and /proc answer differently
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ytingest-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write in {folder}: {exc.strerror or exc}") from None


def check_port(port: int, flag: str) -> None:
    """A TCP port: 1 to 65535 (0: any free port), not taken modulo 65536 by the socket layer."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"{flag} {port}: a port is a number from 1 to 65535 (0: any free port)")


def check_free(host: str, port: int, flag: str) -> None:
    """Bind host:port once and let go, so a port in use stops the command before it loads anything
    (port 0 is always free); the same words as the server's own failure."""
    check_port(port, flag)
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
            sock.bind(address)
    except OSError as exc:  # socket.gaierror too
        raise ConfigError(f"{flag}: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def check_database_url(url: str) -> None:
    """``postgresql://[user[:password]@]host[:port][,host[:port]...]/db``, its hosts and ports read as
    asyncpg reads them. The message never quotes the URL: it may hold a password."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in DATABASE_SCHEMES:
        raise ConfigError("DATABASE_URL must start with postgresql:// (or postgres://)")
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    for spec in netloc.rpartition("@")[2].split(","):
        _check_host_port(spec)


def _check_host_port(spec: str) -> None:
    if spec.startswith("["):
        inside, bracket, port = spec[1:].partition("]")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            bracket = ""
        if not bracket or (port and not port.startswith(":")):
            raise ConfigError("DATABASE_URL has a malformed IPv6 host: write it as [::1] or [::1]:5432")
        port = port[1:]
    else:
        host, _, port = spec.partition(":")
        if ":" in port or "[" in spec or "]" in spec:
            raise ConfigError("DATABASE_URL has a malformed host: an IPv6 host goes in brackets, [::1]:5432")
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ConfigError("DATABASE_URL has a bad port: use a number from 1 to 65535")
