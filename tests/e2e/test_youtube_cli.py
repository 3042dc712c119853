"""YouTube's answers through the real CLI and real yt-dlp, played by the local channel server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import sample_episodes

pytestmark = pytest.mark.slow
FAST_RETRIES = {"RETRY_BASE_S": "0.2", "RETRY_MAX_S": "1"}
COOKIE = ("SID", "s3cret-cookie-value")


def two_episodes(**knobs: object) -> ChannelServer:
    return ChannelServer(sample_episodes()[:2], **knobs)  # type: ignore[arg-type]


def netscape_cookies(path: Path) -> Path:
    """A Netscape-format cookies file for 127.0.0.1, as a browser extension exports it."""
    name, value = COOKIE
    path.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\t{name}\t{value}\n")
    return path


def test_cookies_file_reaches_the_listing_and_every_download(cli: Cli, tmp_path: Path) -> None:
    """The channel requires a cookie: --cookies FILE lists and downloads it, and the videos are stored.
    yt-dlp rewrites its cookies file at exit: each child gets a private copy, and the user's file
    (read-only here, which would make yt-dlp's save fail) is the same, byte for byte, after the run."""
    cookies = netscape_cookies(tmp_path / "private-cookies.txt")
    before = cookies.read_bytes()
    cookies.chmod(0o444)
    with serve_in_thread(two_episodes(require_cookie=COOKIE)) as ch:
        r = cli("stream", ch.feed_url, "--cookies", str(cookies), "--json", extra_env=FAST_RETRIES)
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.json()["done"] == 2
        assert not [entry for entry in ch.log if entry[2] == 403]
    assert COOKIE[1] not in r.stderr and "private-cookies" not in r.stderr
    assert cookies.read_bytes() == before


def test_without_cookies_the_run_exits_2_with_one_line_naming_cookies(cli: Cli) -> None:
    """No cookies for a channel that wants them: exit 2, one error line that says --cookies, no traceback."""
    with serve_in_thread(two_episodes(require_cookie=COOKIE)) as ch:
        r = cli("stream", ch.feed_url, "--json")
    assert r.returncode == 2, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("ytingest: error:")]
    assert len(errors) == 1 and "403" in errors[0] and "--cookies FILE" in errors[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr


def test_a_media_403_is_retried_with_a_fresh_extraction_and_is_never_permanent(cli: Cli) -> None:
    """One expired media URL: the next yt-dlp run gets the file. 403s in a row (YouTube's client
    changes, yt-dlp #17458): DOWNLOAD_ATTEMPTS fresh extractions, then failed, not permanently,
    with the upgrade advice; a plain re-run tries it again."""
    first, second = (ep.id for ep in sample_episodes()[:2])
    env = {**FAST_RETRIES, "DOWNLOAD_ATTEMPTS": "3"}
    with serve_in_thread(two_episodes(forbid_media={first: 1, second: 3})) as ch:
        r = cli("stream", ch.feed_url, "--json", extra_env=env)
        assert r.returncode == 1, r.stderr[-3000:]
        assert (r.json()["done"], r.json()["failed"]) == (1, 1)
        assert ch.hits[first] == 4 and ch.hits[second] == 6  # 2 and 3 attempts: probe + media each
        reasons = {f["video_id"]: f["reason"] for f in cli("status", "--json").json()["failures"]}
        assert "403" in reasons[second] and 'pip install -U "yt-dlp[default]"' in reasons[second]
        assert "permanent" not in reasons[second]
        again = cli("stream", ch.feed_url, "--json", extra_env=env)  # not skipped: the 403s are over
        assert again.returncode == 0 and again.json()["done"] == 1, again.stderr[-3000:]
    retried = [e for e in r.events() if e["event"] == "download_retry"]
    assert {e["video_id"] for e in retried} == {first, second}
