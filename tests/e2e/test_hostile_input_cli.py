"""Hostile input from the source, end to end: a title full of control characters and markup, a
channel URL with a password in it, and children that must not see the database's secrets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import Cli, cli_rows, stop_process, wait_until_serving
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import sample_episodes

pytestmark = pytest.mark.slow

HOSTILE = (
    "\x00nul \x1b]8;;https://evil\x07osc\x1b]8;;\x07 \x1b[2Jclear\ttab\nline"
    " [link=https://evil]x[/link] \u202eRTL\u202c "
)
SECRET = "S3CRETPASS"
PG_SECRET = "PGS3CRET"


@pytest.fixture(autouse=True)
def _no_speakers(cli: Cli) -> None:
    """These tests are about what enters and what is shown, not voices: shorter runs."""
    cli.env["SPEAKERS"] = "false"


def _fake_ytdlp(tmp_path: Path) -> tuple[Path, Path]:
    """A yt-dlp that notes its environment's names and prefixes every listed title with HOSTILE
    (as a site's og:title can); the real yt-dlp does the work."""
    fake, dump = tmp_path / "yt-dlp", tmp_path / "env.jsonl"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, subprocess, sys\n"
        f"with open({str(dump)!r}, 'a') as f:\n"
        "    f.write(json.dumps(dict(os.environ)) + '\\n')\n"
        "real = [sys.executable, '-m', 'yt_dlp', *sys.argv[1:]]\n"
        "if '--flat-playlist' not in sys.argv:\n"
        "    os.execv(sys.executable, real)\n"
        "out = subprocess.run(real, stdout=subprocess.PIPE, check=False)\n"
        "for line in out.stdout.decode().splitlines():\n"
        "    entry = json.loads(line)\n"
        f"    entry['title'] = {HOSTILE!r} + entry.get('title', '')\n"
        "    print(json.dumps(entry), flush=True)\n"
        "sys.exit(out.returncode)\n"
    )
    fake.chmod(0o755)
    return fake, dump


def test_a_title_with_nul_escapes_and_markup_is_stored_clean_and_the_run_exits_0(
    cli: Cli, tmp_path: Path, fresh_dsn: str
) -> None:
    """A listed title holding NUL, OSC/CSI sequences, a tab, a newline, rich markup and a bidi
    override: the video is stored, exit 0; the stored title has no control character, keeps the
    markup and the bidi marks as text. yt-dlp's children never saw DATABASE_URL or PG*."""
    fake, dump = _fake_ytdlp(tmp_path)
    cli.env.update(DATABASE_URL=fresh_dsn, PGPASSWORD=PG_SECRET, YTDLP_PATH=str(fake))
    with serve_in_thread(ChannelServer(sample_episodes()[:1])) as ch:
        r = cli("stream", ch.feed_url, "--json", "--log-format", "json")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (r.json()["done"], r.json()["failed"]) == (1, 0)
    [row] = cli_rows(cli, "SELECT title FROM videos")
    title = row["title"]
    assert title.startswith("nul osc clear tab line [link=https://evil]x[/link] \u202eRTL\u202c ")
    assert not any(c < " " or "\x7f" <= c <= "\x9f" for c in title)
    hits = cli("search", "vector", "--mode", "keyword", "--json").json()
    assert hits and all(h["title"] == title for h in hits)
    envs = [json.loads(line) for line in dump.read_text().splitlines()]
    assert len(envs) >= 2  # the listing and the download
    for env in envs:
        assert "DATABASE_URL" not in env and "PGPASSWORD" not in env
        assert env.get("PATH") and env.get("YTINGEST_HOME")  # the rest is there


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return str(resp.read().decode())


def _serve_pages(cli: Cli, paths: list[str]) -> list[str]:
    """`ytingest serve` in a subprocess: the bodies of ``paths``."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "ytingest", "serve", "--port", str(port)],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}/api/channels")
        return [_get(f"http://127.0.0.1:{port}{path}") for path in paths]
    finally:
        stop_process(server)


def test_a_password_in_the_channel_url_is_used_to_download_and_shown_nowhere(
    cli: Cli, tmp_path: Path, fresh_dsn: str
) -> None:
    """A feed and media behind basic auth, given as ``http://user:S3CRETPASS@host/feed.xml``: the
    video downloads (the credential reached yt-dlp), and S3CRETPASS is in none of stream's JSON,
    its JSON logs, `channels --json`, `search --json`, the stored URLs, /api/channels, /api/search,
    the search page or the --report page. `status --channel` with the credentialed URL finds it."""
    cli.env["DATABASE_URL"] = fresh_dsn
    report = tmp_path / "run.html"
    server = ChannelServer(sample_episodes()[:1], require_basic_auth=("user", SECRET))
    with serve_in_thread(server) as ch:
        url = ch.feed_url.replace("http://", f"http://user:{SECRET}@")
        public = ch.feed_url
        r = cli("stream", url, "--json", "--log-format", "json", "--report", str(report))
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.json()["done"] == 1, r.stdout
        assert 401 not in {status for _, _, status in ch.log}
    shown = {
        "stream --json": r.stdout,
        "logs": r.stderr,
        "report": report.read_text(),
        "channels --json": cli("channels", "--json").stdout,
        "search --json": cli("search", "vector", "--mode", "keyword", "--json").stdout,
        "status --channel": cli("status", "--channel", url, "--json").stdout,
    }
    assert r.events() and f"ytingest: {public}" in shown["report"]
    assert [c["url"] for c in json.loads(shown["channels --json"])] == [public]
    hits = json.loads(shown["search --json"])
    assert hits and {h["channel"] for h in hits} == {public}
    assert json.loads(shown["status --channel"])["videos"]["done"] == 1
    rows = cli_rows(
        cli,
        "SELECT url AS a, '' AS b, '' AS c FROM channels"
        " UNION ALL SELECT coalesce(channel, ''), url, webpage_url FROM videos"
        " UNION ALL SELECT channel, '', '' FROM unknown_speakers",
    )
    shown["database"] = json.dumps(rows)
    api_channels, api_search, page = _serve_pages(
        cli, ["/api/channels", "/api/search?q=vector&mode=keyword", "/?q=vector&mode=keyword"]
    )
    shown.update({"/api/channels": api_channels, "/api/search": api_search, "search page": page})
    assert json.loads(api_search) and public in api_channels
    leaked = [where for where, text in shown.items() if SECRET in text]
    assert not leaked, leaked
