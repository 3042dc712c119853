"""yt-dlp plugins in real yt-dlp children: a plugin on the Python path or in YTDLP_PLUGIN_DIRS loads in
the listing and every download; one in the user's yt-dlp folder only when opted in; the doctor lists
plugins and PO token providers and says whether a provider's server answers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import Cli
from ytingest.config import Settings
from ytingest.doctor.plugins import plugin_checks
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import sample_episodes
from ytingest.ytdlp.options import ytdlp_invocation

PLUGINS = Path(__file__).parents[1] / "fixtures" / "ytdlp_plugins"  # folder of plugin packages
PROBE = PLUGINS / "ytingest_probe"  # one package: yt_dlp_plugins/extractor/ytingest_probe.py
RECORD = "YTINGEST_PLUGIN_RECORD"  # the plugin appends its process id to this file


def pids(record: Path) -> list[str]:
    return record.read_text().split() if record.exists() else []


def stream_two(cli: Cli, record: Path, env: dict[str, str]) -> None:
    """``ytingest stream`` of two short episodes of the local channel; both stored."""
    with serve_in_thread(ChannelServer(sample_episodes()[:2])) as ch:
        r = cli("stream", ch.feed_url, "--json", extra_env={RECORD: str(record), **env})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.json()["done"] == 2


def test_a_plugin_on_the_python_path_loads_in_the_listing_and_every_download(
    cli: Cli, tmp_path: Path
) -> None:
    """PYTHONPATH names the plugin's package (as pip would put it in site-packages): each yt-dlp
    child (one listing, two downloads) imports it once."""
    record = tmp_path / "record.txt"
    path = os.pathsep.join(p for p in (str(PROBE), os.environ.get("PYTHONPATH", "")) if p)
    stream_two(cli, record, {"PYTHONPATH": path})
    seen = pids(record)
    assert len(seen) == len(set(seen)) >= 1 + 2, seen


def test_a_plugin_in_ytdlp_plugin_dirs_loads_in_the_listing_and_every_download(
    cli: Cli, tmp_path: Path
) -> None:
    """YTDLP_PLUGIN_DIRS names a folder of plugin packages, as yt-dlp's --plugin-dirs takes it."""
    record = tmp_path / "record.txt"
    stream_two(cli, record, {"YTDLP_PLUGIN_DIRS": str(PLUGINS)})
    seen = pids(record)
    assert len(seen) == len(set(seen)) >= 1 + 2, seen


@pytest.mark.parametrize(
    "where", [(".config", "yt-dlp", "plugins"), (".yt-dlp", "plugins"), ("yt-dlp-plugins",)]
)
def test_a_plugin_in_the_users_yt_dlp_folder_loads_only_when_opted_in(
    tmp_path: Path, where: tuple[str, ...]
) -> None:
    """yt-dlp's default search covers ~/.config/yt-dlp/plugins, ~/.yt-dlp/plugins, ~/yt-dlp-plugins:
    a child does not search them unless YTDLP_USER_PLUGINS=true."""
    home = tmp_path / "home"
    shutil.copytree(PROBE, home.joinpath(*where) / "probe")
    record = tmp_path / "record.txt"
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "APPDATA", "PYTHONPATH")}
    env.update(HOME=str(home), **{RECORD: str(record)})
    for opted_in, expected in ((False, 0), (True, 1)):
        args = [*ytdlp_invocation(Settings(ytdlp_user_plugins=opted_in)), "-v"]  # no URL: loads, exits
        out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert "Plugin directories" in out.stderr, out.stderr[-2000:]
        assert len(pids(record)) == expected, (opted_in, out.stderr[-2000:])


# ---- the doctor -----------------------------------------------------------------------------------


@pytest.fixture
def ping_server() -> Iterator[str]:
    """A stand-in for bgutil's HTTP server: ``GET /ping`` answers ``{"version": "1.2.3"}``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"version": "1.2.3", "server_uptime": 1}).encode()
            self.send_response(200 if self.path == "/ping" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_doctor_lists_the_plugin_and_says_the_provider_answers(
    ping_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin on this Python's path: the doctor names its extractor and its PO token provider,
    and the provider's base_url answers /ping."""
    monkeypatch.syspath_prepend(str(PROBE))
    args = f"--extractor-args youtubepot-ytingestprobe:base_url={ping_server}"
    plugins, pot = asyncio.run(plugin_checks(Settings(ytdlp_args=args)))
    assert "YtingestProbeIE" in plugins.detail and str(PROBE) in plugins.detail
    assert pot.status == "ok", pot
    assert "ytingest-probe-0.1.0 (external)" in pot.detail and "answers (server 1.2.3)" in pot.detail


def test_doctor_says_a_silent_provider_does_not_answer(cli: Cli) -> None:
    """``ytingest doctor`` with the plugin in YTDLP_PLUGIN_DIRS and nothing listening at its base_url:
    a warning line that it does not answer, and no traceback."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        env = {
            "YTDLP_PLUGIN_DIRS": str(PLUGINS),
            "YTDLP_ARGS": f"--extractor-args youtubepot-ytingestprobe:base_url={url}",
        }
        r = cli("doctor", extra_env=env)
    assert "Traceback" not in r.stdout + r.stderr
    lines = {line.split()[1] if len(line.split()) > 1 else "": line for line in r.stdout.splitlines()}
    assert "YtingestProbeIE" in lines["plugins"], r.stdout
    pot = [line for line in r.stdout.splitlines() if "po token" in line]
    assert len(pot) == 1 and pot[0].startswith("warn") and "does not answer: Connection refused" in pot[0]
