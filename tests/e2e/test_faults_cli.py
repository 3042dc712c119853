"""Faults and bad input through the real CLI: every video ends stored whole or failed with a reason."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from tests.conftest import Cli, cli_rows
from tests.integration.test_embedded_server import server_processes
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import sample_episodes
from ytingest.testing.pgproxy import PgProxy

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_speakers(cli: Cli) -> None:
    """These tests are about faults, logs and the monitor, not voices (test_speaker_labels_cli.py
    runs the speaker stage end to end): without it each run is shorter."""
    cli.env["SPEAKERS"] = "false"


FAST_RETRIES = {"RETRY_BASE_S": "0.2", "RETRY_MAX_S": "1"}


def short_channel(**knobs: object) -> ChannelServer:
    """The five short sample episodes."""
    return ChannelServer(sample_episodes()[:5], **knobs)  # type: ignore[arg-type]


def attempts(cli: Cli) -> dict[str, int]:
    """videos.attempts straight from the CLI's database (embedded, or DATABASE_URL)."""
    return {r["id"]: r["attempts"] for r in cli_rows(cli, "SELECT id, attempts FROM videos")}


def test_transient_errors_are_retried_with_backoff_and_counted(cli: Cli) -> None:
    """503s and a body cut off halfway are retried; the videos are stored; attempts are recorded."""
    # yt-dlp's generic extractor GETs the head of the file before downloading it, so an attempt
    # is two requests: ep01 fails twice on the first (503), ep02's download is cut in attempt 1
    with serve_in_thread(short_channel(flaky={"ep01-vectors": 2}, cut={"ep02-sleep": 2})) as ch:
        r = cli("stream", ch.feed_url, "--json", extra_env=FAST_RETRIES)
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.json()["done"] == 5
        assert ch.hits["ep01-vectors"] == 4 and ch.hits["ep02-sleep"] == 4
    retries = [e for e in r.events() if e["event"] == "download_retry"]
    assert {e["video_id"] for e in retries} == {"ep01-vectors", "ep02-sleep"}
    export = cli("export", "ep02-sleep").json()
    assert export and export[-1]["end"] > 10  # the whole file, not the first half
    counted = attempts(cli)
    assert (counted["ep01-vectors"], counted["ep02-sleep"], counted["ep03-garden"]) == (3, 2, 1)


def test_permanent_errors_are_not_retried_and_the_run_goes_on(cli: Cli) -> None:
    """451/404/410 fail at once with their reason; the rest is stored; a re-run skips them (a 403
    is not permanent: test_youtube_cli.py)."""
    fail = {"ep01-vectors": 451, "ep02-sleep": 404, "ep03-garden": 410}
    with serve_in_thread(short_channel(fail=dict(fail))) as ch:
        r = cli("stream", ch.feed_url, "--json", extra_env=FAST_RETRIES)
        assert r.returncode == 1
        assert (r.json()["done"], r.json()["failed"]) == (2, 3)
        assert all(ch.hits[v] == 1 for v in fail)
        reasons = {f["video_id"]: f["reason"] for f in cli("status", "--json").json()["failures"]}
        assert all(str(code) in reasons[v] for v, code in fail.items())
        again = cli("stream", ch.feed_url, "--json")
        assert again.returncode == 0 and again.json()["skipped"] == 5
        assert all(ch.hits[v] == 1 for v in fail)
        ch.fail.clear()
        retried = cli("retry", "--json")
        assert retried.returncode == 0, retried.stderr[-2000:]
        assert retried.json()["done"] == 3
    assert cli("status", "--json").json()["videos"] == {"done": 5, "failed": 0, "pending": 0}


def test_rate_limiting_pauses_every_download_and_honours_retry_after(cli: Cli) -> None:
    """429 with Retry-After: 2 — no new audio request anywhere for 2 s, then all are stored."""
    with serve_in_thread(short_channel(throttle=1, retry_after=2)) as ch:
        r = cli("stream", ch.feed_url, "--json", "--io-workers", "1", extra_env=FAST_RETRIES)
        assert r.returncode == 0, r.stderr[-3000:]
        log = list(ch.log)
    t429 = next(t for t, _, status in log if status == 429)
    after = [t - t429 for t, _, status in log if t > t429]
    assert after and min(after) >= 1.9, after
    assert r.json()["done"] == 5
    assert any(e["event"] == "rate_limited" and e["retry_after"] == 2 for e in r.events())


def test_corrupt_empty_and_non_audio_files_fail_with_reasons(cli: Cli) -> None:
    """A non-audio body is quarantined, an empty one failed; the ASR keeps working for the rest."""
    with serve_in_thread(short_channel(garbage={"ep01-vectors"}, empty={"ep02-sleep"})) as ch:
        r = cli("stream", ch.feed_url, "--json", extra_env=FAST_RETRIES)
    assert r.returncode == 1
    assert (r.json()["done"], r.json()["failed"]) == (3, 2)
    reasons = {f["video_id"]: (f["stage"], f["reason"]) for f in cli("status", "--json").json()["failures"]}
    assert reasons["ep01-vectors"][0] == "decode" and "quarantine" in reasons["ep01-vectors"][1]
    assert "empty" in reasons["ep02-sleep"][1]
    assert [p.name for p in (cli.home / "quarantine").iterdir()] == ["ep01-vectors.mp3"]


def _segments(cli: Cli) -> set[tuple[str, int, str]]:
    """Every stored segment as (video, idx, text), read in one query (not one ``export`` process
    per video: each would start Python and PostgreSQL again, ~2 s); each stored video's idx
    contiguous from 0 and its count the one in its ledger row (stored whole, no row twice)."""
    rows = cli_rows(cli, "SELECT video_id, idx, text FROM segments")
    ledger = cli_rows(cli, "SELECT id, segments FROM videos WHERE status = 'done'")
    for video in ledger:
        idx = sorted(r["idx"] for r in rows if r["video_id"] == video["id"])
        assert idx == list(range(video["segments"])) and idx, video
    assert {r["video_id"] for r in rows} == {v["id"] for v in ledger}  # no rows of an unstored video
    return {(r["video_id"], r["idx"], r["text"]) for r in rows}


def _spawn(cli: Cli, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ytingest", *args],
        env=cli.env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for_event(proc: subprocess.Popen[str], name: str, timeout: float = 120) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        if json.loads(line)["event"] == name or time.monotonic() > deadline:
            return


def test_kill_9_mid_run_then_rerun_equals_a_clean_run(tmp_path: Path, cli: Cli) -> None:
    """SIGKILL after the first stored video, leftovers planted, same command again: same rows."""
    clean = Cli(tmp_path / "clean", {**cli.env, "YTINGEST_HOME": str(tmp_path / "clean")})
    with serve_in_thread(short_channel()) as ch:
        assert clean("stream", ch.feed_url).returncode == 0
        ch.bandwidth = 20_000
        proc = _spawn(cli, "stream", ch.feed_url, "--log-format", "json", "--io-workers", "2")
        _wait_for_event(proc, "video_stored")
        proc.kill()
        proc.communicate(timeout=10)
        (cli.home / "audio" / "ep05-volcano.mp3.part").write_bytes(b"half a file")
        ch.bandwidth = None
        again = cli("stream", ch.feed_url, "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.json()["skipped"] >= 1
    assert _segments(cli) == _segments(clean)
    assert not list((cli.home / "audio").glob("*.part"))
    assert not server_processes(cli.home / "pg"), "the killed run's PostgreSQL outlived the re-run"


def _children_of_feed(port: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "yt_dlp" in cmd and f"127.0.0.1:{port}" in cmd:
            found.append(p)
    return found


def test_sigterm_drains_gracefully_and_a_second_signal_aborts(tmp_path: Path, cli: Cli) -> None:
    """SIGTERM: exit 130, what was stored is whole, no yt-dlp left. Two SIGINTs: out fast, same."""
    with serve_in_thread(short_channel(bandwidth=15_000)) as ch:
        proc = _spawn(cli, "stream", ch.feed_url, "--json", "--log-format", "json", "--io-workers", "2")
        _wait_for_event(proc, "download_done")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 130
        assert json.loads(out)["stopped_early"] is True
        assert not _children_of_feed(ch.port)

        ch.bandwidth = 5_000
        proc = _spawn(cli, "stream", ch.feed_url, "--log-format", "json", "--io-workers", "3")
        _wait_for_event(proc, "download_start")
        time.sleep(1)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        assert proc.returncode == 130 and time.monotonic() - t0 < 15
        time.sleep(0.5)
        assert not _children_of_feed(ch.port)
    report = cli("status", "--json").json()
    stored = {video for video, _, _ in _segments(cli)}  # each stored video whole (see _segments)
    assert len(stored) == report["videos"]["done"]


def test_hostile_metadata_stays_inside_home_and_logs_stay_one_line(tmp_path: Path, cli: Cli) -> None:
    """Ids and titles with ../, /, newlines, $(...) and huge lengths: no path escapes, no shell runs."""
    base = sample_episodes()[2]
    names = ["../../escape", "a/b/c", "x\ny", "$(touch PWNED)", "z" * 300]
    hostile = [replace(base, id=n, title=f"title {n} \n$(id) `id`") for n in names]
    marker = tmp_path / "PWNED"
    with serve_in_thread(ChannelServer(hostile)) as ch:
        r = cli("stream", ch.feed_url, "--json", "--log-format", "json", extra_env=FAST_RETRIES)
    assert r.returncode in (0, 1), r.stderr[-3000:]
    assert r.json()["done"] + r.json()["failed"] == len(names)
    assert r.json()["done"] >= 3
    assert not marker.exists() and not Path("PWNED").exists()
    home = cli.home.resolve()
    for path in tmp_path.rglob("*"):
        assert path.resolve().is_relative_to(tmp_path.resolve())
    for path in home.rglob("*"):
        assert path.resolve().is_relative_to(home)
    assert all(isinstance(e, dict) for e in r.events())  # every stderr line is one JSON event


def test_secrets_never_appear_in_output_or_errors(tmp_path: Path, cli: Cli, fresh_dsn: str) -> None:
    """The DB password and the cookies file (path and contents) never show, not even in errors."""
    cookies = tmp_path / "very-secret-cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tSID\tcookie-secret-42\n")
    with serve_in_thread(PgProxy(fresh_dsn)) as proxy, serve_in_thread(short_channel()) as ch:
        dsn = proxy.dsn.replace("postgresql://postgres@", "postgresql://postgres:hunter2@")
        env = {"DATABASE_URL": dsn, "COOKIES_FILE": str(cookies)}
        ok = cli("stream", ch.feed_url, "--limit", "2", "--json", "--log-level", "debug", extra_env=env)
        assert ok.returncode == 0, ok.stderr[-2000:]
        proxy.down = True
        down = cli("stream", ch.feed_url, "--json", extra_env={**env, "DB_RETRY_S": "1"})
        status = cli("status", extra_env=env)
    assert down.returncode == 2 and status.returncode == 2
    for r in (ok, down, status):
        text = r.stdout + r.stderr
        for secret in ("hunter2", "cookie-secret-42", "very-secret-cookies"):
            assert secret not in text, (secret, text[-500:])
    assert "127.0.0.1" in status.stderr  # the error still says where it tried
