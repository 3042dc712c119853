"""Each stored video's language, its detection probability and its warning, on real PostgreSQL:
stored with the segments, replaced by a re-store, and shown by status, export, search and videos."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args

import asyncpg
import numpy as np
import pytest

import ytingest.db.schema as schema
from ytingest.db.database import Database
from ytingest.export import render
from ytingest.items import EmbeddedTranscript, Segment, Transcript, VideoRef
from ytingest.search import Mode, SearchQuery

DIM = 8
WARNING = "speaker identification failed: no voiceprints match"


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    return v


def item(
    vid: str,
    n: int,
    *,
    axis: int = 0,
    language: str = "en",
    probability: float | None = None,
    warning: str | None = None,
    channel: str = "",
) -> EmbeddedTranscript:
    segs = tuple(Segment(i, i * 2.0, i * 2.0 + 1.5, f"{vid} talks about bread {i}") for i in range(n))
    vecs = np.stack([unit(axis + i) for i in range(n)])
    ref = VideoRef(vid, f"http://x/{vid}", title=vid.upper(), webpage_url=f"http://x/{vid}", channel=channel)
    transcript = Transcript(ref, segs, n * 2.0, language, probability, warning)
    return EmbeddedTranscript(transcript, vecs)


async def open_db(dsn: str) -> Database:
    db = Database(dsn)
    await db.connect()
    await db.migrate(DIM)
    return db


async def store(db: Database, *items: EmbeddedTranscript) -> None:
    for it in items:
        await db.register_video(it.transcript.video)
    await db.store_transcripts(list(items), asr_model="m", embed_model="e")


def fake_engine(db: Database) -> Any:
    """What cmd_status and cmd_export use of an Engine: its database."""
    return SimpleNamespace(database=db)


async def test_language_probability_and_warning_are_stored_per_video(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """One group of videos: each keeps its own language, probability (NULL when set) and warning."""
    db = await open_db(fresh_dsn)
    try:
        await store(
            db,
            item("a", 2, language="de", probability=0.93, warning=WARNING),
            item("b", 2, axis=3, language="en"),
        )
        rows = await conn.fetch("SELECT id, language, language_probability, warning FROM videos ORDER BY id")
        assert [(r["id"], r["language"], r["warning"]) for r in rows] == [
            ("a", "de", WARNING),
            ("b", "en", None),
        ]
        assert rows[0]["language_probability"] == pytest.approx(0.93)
        assert rows[1]["language_probability"] is None
        listed = {v["id"]: v for v in await db.videos()}
        assert {k: listed["a"][k] for k in ("language", "language_probability", "warning")} == {
            "language": "de",
            "language_probability": 0.93,
            "warning": WARNING,
        }
        assert (listed["b"]["language"], listed["b"]["language_probability"], listed["b"]["warning"]) == (
            "en",
            None,
            None,
        )
    finally:
        await db.close()


async def test_status_counts_and_lists_the_warnings(
    fresh_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """status has ``warned`` and ``warnings`` (only done videos with one, only the channel's when
    named); ``ytingest status`` prints them, and its --json carries them."""
    from ytingest.cli.main import cmd_status

    db = await open_db(fresh_dsn)
    try:
        await db.register_channel("https://one")
        await store(db, item("a", 2, language="de", probability=0.93, warning=WARNING, channel="https://one"))
        await store(db, item("b", 1))
        await db.register_video(VideoRef("c", "http://x/c"))
        await db.mark_failed("c", "download", "HTTP Error 404: Not Found")
        report = await db.status()
        assert report["warned"] == 1
        assert report["warnings"] == [{"video_id": "a", "title": "A", "warning": WARNING}]
        assert report["videos"] == {"done": 2, "failed": 1, "pending": 0}
        assert (await db.status("https://one"))["warned"] == 1
        assert (await db.status("https://other"))["warnings"] == []

        args = argparse.Namespace(channel=None, json=False)
        assert await cmd_status(fake_engine(db), args) == 0
        text = capsys.readouterr().out
        assert "2 done (1 with a warning), 1 failed" in text
        assert f"  warning a: {WARNING}\n" in text
        assert await cmd_status(fake_engine(db), argparse.Namespace(channel=None, json=True)) == 0
        doc = json.loads(capsys.readouterr().out)
        assert (doc["warned"], doc["warnings"][0]["warning"]) == (1, WARNING)
    finally:
        await db.close()


async def test_export_json_carries_language_probability_and_warning(fresh_dsn: str, tmp_path: Path) -> None:
    """``ytingest export --format json`` rows carry the stored language, probability and warning."""
    from ytingest.cli.main import cmd_export

    db = await open_db(fresh_dsn)
    try:
        await store(
            db, item("a", 3, language="de", probability=0.9312345, warning=WARNING), item("b", 1, axis=4)
        )
        out = tmp_path / "a.json"
        args = argparse.Namespace(video_id="a", format="json", output=out)
        assert await cmd_export(fake_engine(db), args) == 0
        rows = json.loads(out.read_text(encoding="utf-8"))
        assert len(rows) == 3
        assert {(r["video_id"], r["language"], r["language_probability"], r["warning"]) for r in rows} == {
            ("a", "de", 0.9312, WARNING)
        }
        found = await db.video_segments("b")
        assert found is not None
        plain = json.loads(render(found[1], "json", video=found[0]))
        assert (plain[0]["language"], plain[0]["language_probability"], plain[0]["warning"]) == (
            "en",
            None,
            None,
        )
    finally:
        await db.close()


@pytest.mark.parametrize("mode", get_args(Mode))
async def test_search_hits_carry_their_videos_language(fresh_dsn: str, mode: Mode) -> None:
    """Hits of every mode carry their own video's language and probability, in to_dict too."""
    db = await open_db(fresh_dsn)
    try:
        await store(db, item("a", 3, language="de", probability=0.93), item("b", 3, axis=4, language="fr"))
        hits = await db.search(SearchQuery("bread", mode=mode, limit=10), unit(0))
        assert {h.video_id for h in hits} == {"a", "b"}
        expected = {"a": ("de", 0.93), "b": ("fr", None)}
        for h in hits:
            doc = h.to_dict()
            assert (doc["language"], doc["language_probability"]) == expected[h.video_id]
            assert h.language == expected[h.video_id][0]
    finally:
        await db.close()


async def test_a_restore_replaces_language_and_clears_the_warning(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """A retry that stores the video again without a warning clears it; language and probability
    are the new ones (NULL probability when the language was set)."""
    db = await open_db(fresh_dsn)
    try:
        await store(db, item("a", 2, language="de", probability=0.6, warning=WARNING))
        assert (await db.status())["warned"] == 1
        await store(db, item("a", 2, language="fr"))
        row = await conn.fetchrow("SELECT language, language_probability, warning FROM videos WHERE id = 'a'")
        assert tuple(row) == ("fr", None, None)
        report = await db.status()
        assert (report["warned"], report["warnings"]) == (0, [])
        assert await conn.fetchval("SELECT count(*) FROM segments WHERE video_id = 'a'") == 2
    finally:
        await db.close()


async def test_migration_7_to_8_keeps_the_rows(
    fresh_dsn: str, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at schema 7 with stored and failed videos migrates to 8: rows kept, the new
    columns NULL, then filled by the next store."""
    full = schema.MIGRATIONS
    monkeypatch.setattr(schema, "MIGRATIONS", full[:7])
    db = await open_db(fresh_dsn)
    try:
        await db.register_video(VideoRef("a", "http://x/a", title="A"))
        await db.register_video(VideoRef("b", "http://x/b"))
        await db.mark_failed("b", "download", "gone")
        await conn.execute(
            "INSERT INTO segments (video_id, idx, start_s, end_s, text, embedding, embed_model)"
            " VALUES ('a', 0, 0, 1, 'old bread', $1::vector, 'e')",
            str(unit(0).tolist()),
        )
        await conn.execute("UPDATE videos SET status = 'done', segments = 1 WHERE id = 'a'")
    finally:
        await db.close()
    assert await conn.fetchval("SELECT value FROM ytingest_meta WHERE key = 'schema_version'") == "7"
    columns = "SELECT column_name FROM information_schema.columns WHERE table_name = 'videos'"
    assert "language" not in {r[0] for r in await conn.fetch(columns)}

    monkeypatch.setattr(schema, "MIGRATIONS", full)
    db = await open_db(fresh_dsn)
    try:
        assert await conn.fetchval("SELECT value FROM ytingest_meta WHERE key = 'schema_version'") == str(
            len(full)
        )
        assert {"language", "language_probability", "warning"} <= {r[0] for r in await conn.fetch(columns)}
        rows = await conn.fetch("SELECT id, status, language, warning FROM videos ORDER BY id")
        assert [tuple(r) for r in rows] == [("a", "done", None, None), ("b", "failed", None, None)]
        hits = await db.search(SearchQuery("bread", mode="keyword"), None)
        assert [(h.video_id, h.text, h.language) for h in hits] == [("a", "old bread", None)]
        assert (await db.status())["warned"] == 0
        await store(db, item("b", 1, language="es", probability=0.8, warning=WARNING))
        assert (await db.status())["warnings"] == [{"video_id": "b", "title": "B", "warning": WARNING}]
    finally:
        await db.close()
