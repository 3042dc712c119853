"""Early checks without an engine (preflight), the media URL's scheme, the metrics endpoint's Host
check, oversized requests, and a report that fails after the run."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import ClientSession, web

from ytingest.cli import main as cli
from ytingest.errors import ConfigError
from ytingest.items import RunSummary
from ytingest.monitor.http import MetricsServer, serve_app
from ytingest.preflight import check_database_url, check_free, check_output_file, check_source_url
from ytingest.ytdlp.failures import classify, media_url_refusal


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:hunter2@db.example:99999/x",
        "postgresql://bob:hunter2@db.example:54x2/x",
        "postgresql://bob:hunter2@[::zz]:5432/x",
        "postgresql://bob:hunter2@[::1/x",
        "postgresql://bob:hunter2@::1:5432/x",
        "mysql://bob:hunter2@db.example/x",
        "bob:hunter2@db.example/x",
    ],
)
def test_a_malformed_database_url_is_one_line_without_the_password(url: str) -> None:
    """A bad port, a bad IPv6 host or another scheme: ConfigError, the password never in it."""
    with pytest.raises(ConfigError) as caught:
        check_database_url(url)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:hunter2@db.example:5432/x",
        "postgres://db.example/x",
        "postgresql://bob@[::1]:5432/x?sslmode=disable",
        "postgresql://h1:5432,h2:5433/x",
        "postgresql:///x?host=/var/run/postgresql",
        "postgresql://bob:p%40ss@127.0.0.1/x",
    ],
)
def test_well_formed_database_urls_pass(url: str) -> None:
    """What asyncpg connects with passes: hosts, ports, several hosts, a socket folder."""
    check_database_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "ytsearch5:foo",
        "notaurl",
        "not a url",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "data:,x",
        "http://",
    ],
)
def test_a_channel_url_must_be_http_with_a_host(url: str) -> None:
    """yt-dlp's search prefixes, local and script schemes, text without a scheme: refused."""
    with pytest.raises(ConfigError, match="cannot list"):
        check_source_url(url)


def test_a_url_without_its_scheme_gets_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"did you mean https://youtube\.com/@name\?"):
        check_source_url("youtube.com/@name")
    check_source_url("https://www.youtube.com/@name")
    check_source_url("http://127.0.0.1:8000/feed.xml")


def test_an_output_file_needs_a_writable_existing_folder(tmp_path: Path) -> None:
    """A missing folder, a folder given as the file, /proc: one line each; a plain path passes."""
    for bad in (Path("/proc/x/r.html"), tmp_path, Path("/proc/r.html")):
        with pytest.raises(ConfigError, match="--report"):
            check_output_file(bad, "--report")
    check_output_file(tmp_path / "r.html", "--report")
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_a_port_in_use_or_out_of_range_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="Address already in use"):
            check_free("127.0.0.1", port, "--metrics-port")
    with pytest.raises(ConfigError, match="1 to 65535"):
        check_free("127.0.0.1", 70000, "--port")
    check_free("127.0.0.1", 0, "--port")


@pytest.mark.parametrize("url", ["file:///tmp/a.mp3", "data:audio/mp3;base64,AAAA", "JavaScript:alert(1)"])
def test_a_local_media_url_fails_for_good_before_any_attempt(url: str) -> None:
    """file:, data:, javascript: media: a permanent failure naming the scheme, not the URL."""
    refused = media_url_refusal(url)
    assert refused is not None and refused.permanent
    assert url.partition(":")[0].lower() + ":" in str(refused) and url not in str(refused)


def test_the_downloader_refuses_a_data_url_without_running_ytdlp(tmp_path: Path) -> None:
    """yt-dlp would decode a data: URL (it does today); the downloader never starts it for one: a
    yt-dlp that does not exist would fail with "cannot run" instead."""
    from ytingest.errors import DownloadError
    from ytingest.items import VideoRef
    from ytingest.ytdlp.downloader import YtDlpDownloader

    downloader = YtDlpDownloader(ytdlp=(str(tmp_path / "no-such-yt-dlp"),), pick_extractor=False)
    with pytest.raises(DownloadError) as caught:
        asyncio.run(downloader.download(VideoRef("v1", "data:audio/mp3;base64,AAAA"), tmp_path))
    assert caught.value.permanent and "data:" in str(caught.value) and "cannot run" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["https://x.test/a.mp3", "http://x.test/a", "rtmp://x.test/live", "dQw4w9WgXcQ"]
)
def test_network_media_urls_are_left_to_ytdlp(url: str) -> None:
    assert media_url_refusal(url) is None


@pytest.mark.parametrize(
    "text",
    [
        "ERROR: file:// URLs are disabled by default in yt-dlp for security reasons. "
        "Use --enable-file-urls to enable at your own risk.",
        'ERROR: Unable to handle request: Unsupported url scheme: "javascript" '
        "(requests, urllib, websockets)",
    ],
)
def test_ytdlp_refusing_a_local_url_is_permanent(text: str) -> None:
    """yt-dlp's own words for file:// and javascript: URLs: permanent, not four attempts."""
    error = classify(text)
    assert error.permanent and "not a network URL" in str(error)


async def _get(url: str, host: str | None = None) -> int:
    async with ClientSession() as session:
        headers = {"Host": host} if host is not None else {}
        async with session.get(url, headers=headers) as resp:
            return resp.status


async def test_the_metrics_endpoint_answers_only_for_loopback_names() -> None:
    """DNS rebinding: a Host other than 127.0.0.1/localhost/[::1] gets 421, as `serve` answers."""
    metrics = MetricsServer(lambda: {"state": "running"})
    await metrics.start()
    base = f"http://127.0.0.1:{metrics.port}"
    try:
        assert await _get(f"{base}/status") == 200
        assert await _get(f"{base}/metrics", f"localhost:{metrics.port}") == 200
        assert await _get(f"{base}/status", f"[::1]:{metrics.port}") == 200
        for bad in ("evil.example", f"evil.example:{metrics.port}", "127.0.0.1.evil.example", "a@127.0.0.1"):
            assert await _get(f"{base}/status", bad) == 421, bad
            assert await _get(f"{base}/metrics", bad) == 421, bad
    finally:
        await metrics.stop()


async def test_the_metrics_port_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics = MetricsServer(lambda: {}, port=taken.getsockname()[1])
        with pytest.raises(ConfigError, match="--metrics-port: cannot listen"):
            await metrics.start()


async def test_an_oversized_request_is_a_400_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """A request line past aiohttp's limit: 400, and nothing logged with a traceback."""

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner, port = await serve_app(app, "127.0.0.1", 0)
    try:
        with caplog.at_level(logging.DEBUG):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert status_line.split()[1] == b"400"
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


class _Engine:
    """Just what cmd_stream touches: a finished run, and a monitor with no samples."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary
        self.monitor = SimpleNamespace(history=[])

    async def stream(self, _url: str, **_listing: Any) -> RunSummary:
        return self.summary

    def status_document(self) -> dict[str, Any]:
        return {}


async def test_a_report_that_fails_after_the_run_keeps_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The --json summary is printed first; then one error line, exit 2."""
    summary = RunSummary(done=2, failed=0, skipped=1, segments=9, audio_seconds=3.0, wall_seconds=1.0)
    args = argparse.Namespace(
        url="http://x.test/feed.xml",
        limit=None,
        skip_shorts=False,
        since=None,
        until=None,
        new_only=False,
        tabs=None,
        dashboard=False,
        report=tmp_path,  # a folder: writing the report fails
        json=True,
    )
    code = await cli.cmd_stream(_Engine(summary), args)  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    assert code == cli.EXIT_USAGE
    assert json.loads(out)["done"] == 2
    assert len(err.splitlines()) == 1 and err.startswith("ytingest: error: --report")
