"""``ytingest doctor`` as a user runs it (the real yt-dlp child, the embedded PostgreSQL, the bundled
models), and the per-channel reports: ``channels``, ``status --channel``, dates in ``export``."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yt_dlp.version

from tests.conftest import Cli, cli_in, make_cli
from ytingest.db.database import Database
from ytingest.items import EmbeddedTranscript, Segment, Transcript, VideoRef

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def doctor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """One home for the module's doctor runs (the embedded server is initialised once)."""
    yield cli_in(tmp_path_factory.mktemp("doctor") / "home")


def test_doctor_reports_the_js_runtime_yt_dlp_finds(doctor: Cli) -> None:
    """``doctor --json``: yt-dlp's own debug header names deno, the database answers with pgvector,
    the bundled models load offline; exit 0 and ``ok``, CPU mode only as information."""
    r = doctor("doctor", "--json")
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    doc = r.json()
    checks = {c["name"]: c for c in doc["checks"]}
    assert doc["ok"] is True
    assert doc["js_runtime"].startswith("deno-") and checks["js runtime"]["status"] == "ok"
    assert doc["ytdlp_version"] == yt_dlp.version.__version__
    assert doc["pgvector"] and checks["database"]["status"] == "ok"
    assert checks["asr model"]["status"] == checks["embed model"]["status"] == "ok"
    assert set(checks) >= {"yt-dlp", "cookies", "ctranslate2", "torch", "gpu", "disk"}
    assert all(c["status"] in ("ok", "warn", "info") for c in doc["checks"])
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in doc["checks"])


@pytest.mark.parametrize("runtime", ["broken", "missing"])
def test_doctor_fails_without_a_js_runtime(doctor: Cli, tmp_path: Path, runtime: str) -> None:
    """A JS_RUNTIME that yt-dlp's own check rejects (a "deno" that is no deno), or one whose path
    does not exist: exit 1, and one ``fail  js runtime`` line that says what to do."""
    fake = tmp_path / "deno"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    choice = f"deno:{fake}" if runtime == "broken" else "deno:/nonexistent/deno"
    r = doctor("doctor", extra_env={"JS_RUNTIME": choice})
    assert r.returncode == 1, r.stdout + r.stderr[-2000:]
    lines = r.stdout.splitlines()
    failed = [line for line in lines if line.startswith("fail")]
    assert len(failed) == 1 and failed[0].startswith("fail  js runtime"), lines
    if runtime == "broken":
        assert "yt-dlp finds no JavaScript runtime: YouTube formats go missing" in failed[0]
    else:
        assert "JS_RUNTIME: /nonexistent/deno does not exist" in failed[0]
    assert "JS_RUNTIME=deno:/path/to/deno" in failed[0]
    assert lines[-1] == "not ready: 1 check(s) failed (js runtime)"


def test_doctor_names_an_unreachable_database_and_shows_no_secret(tmp_path: Path) -> None:
    """DATABASE_URL pointing nowhere fails the database check, naming host and database but not the
    password; a cookie file is counted, its values never printed."""
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t1999999999\tSID\tcookie-value-xyz\n"
    )
    cli = make_cli(tmp_path / "home", "postgresql://ann:pw-topsecret@127.0.0.1:1/ytdb")
    r = cli("doctor", "--json", extra_env={"COOKIES_FILE": str(cookies)})
    assert r.returncode == 1, r.stdout + r.stderr[-2000:]
    checks = {c["name"]: c for c in r.json()["checks"]}
    assert checks["database"]["status"] == "fail" and "127.0.0.1/ytdb" in checks["database"]["detail"]
    assert checks["cookies"] == {
        "name": "cookies",
        "status": "ok",
        "detail": "COOKIES_FILE: 1 cookies",
        "fix": "",
    }
    assert checks["js runtime"]["status"] == "ok"  # the cookies reach the yt-dlp child too
    for secret in ("pw-topsecret", "cookie-value-xyz"):
        assert secret not in r.stdout + r.stderr


DIM = 384  # the bundled embedder's: the CLI's Engine accepts the database without loading it
TALK, BAKE = "https://www.youtube.com/@talk", "https://example.org/bake.rss"


async def _two_channels(dsn: str) -> None:
    """'talk' (done, uploaded 2026-03-01, by "The Talk Show") and 'late' (failed) on TALK; 'bake'
    (done, undated) on BAKE."""
    db = Database(dsn)
    await db.connect()
    try:
        await db.migrate(DIM)
        for url, vid, day in (
            (TALK, "talk", "2026-03-01"),
            (TALK, "late", "2026-04-02"),
            (BAKE, "bake", None),
        ):
            await db.register_channel(url)
            await db.register_video(
                VideoRef(vid, f"https://media.example.org/{vid}.m4a", vid, 90.0, url, "", day)
            )
        await db.record_metadata("talk", upload_date=None, channel_name="The Talk Show", channel_id="UC1")
        for vid in ("talk", "bake"):
            segs = (Segment(0, 0.0, 4.0, f"{vid} one"), Segment(1, 4.0, 9.5, f"{vid} two"))
            ref = VideoRef(vid, "", vid)
            vectors = np.eye(DIM, dtype=np.float32)[:2]
            await db.store_transcript(
                EmbeddedTranscript(Transcript(ref, segs, 90.0), vectors), asr_model="m", embed_model="e"
            )
        await db.mark_failed("late", "download", "HTTP Error 404: Not Found", permanent=True)
    finally:
        await db.close()


def test_channels_status_for_one_channel_and_dated_export(fresh_dsn: str, tmp_path: Path) -> None:
    """``channels --json`` lists both channels with name, counts, hours, newest upload and last run;
    ``status --channel`` counts one channel only; ``export --format json`` rows carry the date."""
    asyncio.run(_two_channels(fresh_dsn))
    cli = make_cli(tmp_path / "home", fresh_dsn)

    r = cli("channels", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    channels = {c["url"]: c for c in r.json()}
    talk = channels[TALK]
    assert {k: talk[k] for k in ("name", "done", "failed", "pending", "latest_upload")} == {
        "name": "The Talk Show",
        "done": 1,
        "failed": 1,
        "pending": 0,
        "latest_upload": "2026-04-02",
    }
    assert talk["audio_hours"] == pytest.approx(90 / 3600, abs=1e-3) and talk["last_run"]
    assert (channels[BAKE]["name"], channels[BAKE]["latest_upload"]) == (None, None)
    text = cli("channels").stdout
    assert f"{TALK} (The Talk Show): 1 done, 1 failed, 0 pending" in text

    r = cli("status", "--channel", TALK, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    report = r.json()
    assert report["videos"] == {"done": 1, "failed": 1, "pending": 0} and report["segments"] == 2
    assert [f["video_id"] for f in report["failures"]] == ["late"]
    bake = cli("status", "--channel", BAKE, "--json").json()
    assert bake["videos"] == {"done": 1, "failed": 0, "pending": 0} and bake["failures"] == []
    assert cli("status", "--channel", BAKE).stdout.startswith(f"videos of {BAKE}: 1 done, 0 failed")

    rows = cli("export", "talk", "--format", "json").json()
    assert [(row["video_id"], row["upload_date"], row["text"]) for row in rows] == [
        ("talk", "2026-03-01", "talk one"),
        ("talk", "2026-03-01", "talk two"),
    ]
    assert cli("export", "bake", "--format", "json").json()[0]["upload_date"] is None
