"""Per-channel speaker labels on real PostgreSQL: anonymous voices labelled as each video is stored
(the same voice keeps its ``unknown-N`` across a channel's videos, channels count apart, concurrent
writers never collide), `speakers name` / `merge`, the overlap flag, and migration 9 over old rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import numpy as np
import pytest

import ytingest.db.schema as schema
from ytingest.cli.main import main
from ytingest.db.database import Database
from ytingest.errors import ConfigError
from ytingest.items import AnonymousVoice, EmbeddedTranscript, Segment, Transcript, VideoRef, Voiceprint
from ytingest.search import SearchQuery
from ytingest.speakers.clustering import name_voices
from ytingest.speakers.naming import merge_voices, name_voice

DIM = 8  # text embeddings
VOICE_DIM = 64  # speaker embeddings: random unit vectors this long are near-orthogonal
A, B = "http://a/feed", "http://b/feed"
SPK = "spk-model"
RNG = np.random.default_rng(14)


def person() -> np.ndarray:
    v: np.ndarray = RNG.standard_normal(VOICE_DIM, dtype=np.float32)
    out: np.ndarray = v / np.linalg.norm(v)
    return out


def heard(v: np.ndarray) -> np.ndarray:
    """The same voice met again: a little noise (cosine ~0.99)."""
    w: np.ndarray = v + 0.01 * RNG.standard_normal(VOICE_DIM, dtype=np.float32)
    out: np.ndarray = w / np.linalg.norm(w)
    return out


def item(
    vid: str,
    channel: str,
    voices: dict[str, np.ndarray],
    speakers: list[str | None],
    overlap: tuple[int, ...] = (),
) -> EmbeddedTranscript:
    """A video whose segment i is said by ``speakers[i]`` (a voice key, a name or None)."""
    segs = tuple(
        Segment(
            i,
            i * 2.0,
            i * 2.0 + 1.5,
            f"{vid} line {i}",
            speaker=s,
            speaker_score=0.5 + i / 100,
            overlap=i in overlap,
        )
        for i, s in enumerate(speakers)
    )
    vecs = np.eye(DIM, dtype=np.float32)[[i % DIM for i in range(len(segs))]].reshape(len(segs), DIM)
    ref = VideoRef(vid, f"http://x/{vid}", title=vid, webpage_url=f"http://x/{vid}", channel=channel)
    anon = tuple(AnonymousVoice(k, v, 10.0) for k, v in voices.items())
    return EmbeddedTranscript(Transcript(ref, segs, len(segs) * 2.0, voices=anon), vecs)


async def open_db(dsn: str) -> Database:
    db = Database(dsn, pool_size=3)
    await db.connect()
    await db.migrate(DIM)
    for url in (A, B):
        await db.register_channel(url)
    return db


async def store(db: Database, *items: EmbeddedTranscript, model: str = SPK) -> None:
    for it in items:
        await db.register_video(it.transcript.video)
    await db.store_transcripts(
        list(items), asr_model="m", embed_model="e", speaker_model=model, same_voice=0.8, namer=name_voices
    )


async def speakers_of(conn: asyncpg.Connection, vid: str) -> list[str | None]:
    return [
        r[0] for r in await conn.fetch("SELECT speaker FROM segments WHERE video_id = $1 ORDER BY idx", vid)
    ]


async def kept(conn: asyncpg.Connection) -> list[tuple[str, str, float]]:
    rows = await conn.fetch("SELECT channel, label, weight FROM unknown_speakers ORDER BY channel, label")
    return [(r["channel"], r["label"], r["weight"]) for r in rows]


async def test_a_voice_keeps_its_label_across_a_channels_videos(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """Same voice in two stores of channel A -> same unknown-N (its running mean grows); a new voice
    -> the next number; channel B counts from unknown-1; enrolled names and scores pass through."""
    host, guest, other = person(), person(), person()
    db = await open_db(fresh_dsn)
    try:
        await store(db, item("a1", A, {"?0.0": host, "?0.1": guest}, ["?0.0", "?0.1", "Ann", "?0.0", None]))
        await store(db, item("a2", A, {"?0.0": heard(other), "?1.0": heard(host)}, ["?1.0", "?0.0"]))
        await store(db, item("b1", B, {"?0.0": heard(host)}, ["?0.0"]))
        assert await speakers_of(conn, "a1") == ["unknown-1", "unknown-2", "Ann", "unknown-1", None]
        assert await speakers_of(conn, "a2") == ["unknown-1", "unknown-3"]
        assert await speakers_of(conn, "b1") == ["unknown-1"]
        assert await kept(conn) == [
            (A, "unknown-1", 20.0),
            (A, "unknown-2", 10.0),
            (A, "unknown-3", 10.0),
            (B, "unknown-1", 10.0),
        ]
        scores = await conn.fetch("SELECT speaker_score FROM segments WHERE video_id = 'a1' ORDER BY idx")
        assert [round(r[0], 2) for r in scores] == [0.5, 0.51, 0.52, 0.53, 0.54]
        report = await db.speakers_report()
        assert report["unknown"][:2] == [
            {"label": "unknown-1", "channel": A, "segments": 3, "videos": 2},
            {"label": "unknown-2", "channel": A, "segments": 1, "videos": 1},
        ]
        assert {"label": "unknown-1", "channel": B, "segments": 1, "videos": 1} in report["unknown"]
    finally:
        await db.close()


async def test_storing_a_video_again_keeps_its_labels_and_adds_no_voices(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """A replaced video gets the same labels back; no duplicate voice rows, no new numbers."""
    host, guest = person(), person()
    db = await open_db(fresh_dsn)
    try:
        video = item("a1", A, {"?0.0": host, "?0.1": guest}, ["?0.0", "?0.1"])
        for _ in range(3):
            await store(db, video)
        assert await speakers_of(conn, "a1") == ["unknown-1", "unknown-2"]
        assert [(c, label) for c, label, _ in await kept(conn)] == [(A, "unknown-1"), (A, "unknown-2")]
    finally:
        await db.close()


async def test_concurrent_writers_of_one_channel_never_collide(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """Two writers (two pools) store videos of one channel at once, round after round: the host
    heard in every video keeps one label, each guest gets its own, numbered 1..N without a gap."""
    host = person()
    guests = [person() for _ in range(10)]
    dbs = [await open_db(fresh_dsn), await open_db(fresh_dsn)]
    try:
        for r in range(5):
            videos = [
                item(f"v{r}{w}", A, {"?0.0": heard(host), "?0.1": guests[2 * r + w]}, ["?0.0", "?0.1"])
                for w in range(2)
            ]
            await asyncio.gather(*(store(db, v) for db, v in zip(dbs, videos, strict=True)))
        labels = {v: await speakers_of(conn, v) for v in (f"v{r}{w}" for r in range(5) for w in range(2))}
        assert {s[0] for s in labels.values()} == {"unknown-1"}  # the host, first stored by either
        guest_labels = [str(s[1]) for s in labels.values()]
        assert sorted(guest_labels) == sorted(f"unknown-{n}" for n in range(2, 12))
        assert len(await kept(conn)) == 11
    finally:
        for db in dbs:
            await db.close()


async def test_a_voice_key_without_its_voice_is_stored_without_a_speaker(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """A key the transcript does not list cannot be named: that row has no speaker (never the raw
    key), the other rows are labelled, and the video is stored (one bad label does not end a run)."""
    db = await open_db(fresh_dsn)
    try:
        await store(db, item("a1", A, {"?0.0": person()}, ["?0.0", "?0.2"]))
        rows = await conn.fetch("SELECT speaker FROM segments WHERE video_id = 'a1' ORDER BY idx")
        assert [r["speaker"] for r in rows] == ["unknown-1", None]
    finally:
        await db.close()


async def test_overlap_round_trips_through_export(fresh_dsn: str) -> None:
    db = await open_db(fresh_dsn)
    try:
        await store(db, item("a1", A, {}, ["Ann", "Bob", "Ann"], overlap=(1,)))
        found = await db.video_segments("a1")
        assert found is not None
        assert [r["overlap"] for r in found[1]] == [False, True, False]
    finally:
        await db.close()


async def test_naming_a_voice_relabels_it_and_survives_enrolment(
    fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """`speakers name`: the channel's segments of the voice take the name (found by a speaker
    search), it becomes a 'named' voiceprint that an enrolment with an empty folder keeps, and the
    same label in another channel is untouched. An ambiguous or unknown label is refused."""
    host, guest = person(), person()
    db = await open_db(fresh_dsn)
    try:
        await store(db, item("a1", A, {"?0.0": host, "?0.1": guest}, ["?0.0", "?0.1", "?0.0"]))
        await store(db, item("a2", A, {"?0.0": heard(host)}, ["?0.0"]))
        await store(db, item("b1", B, {"?0.0": guest}, ["?0.0"]))
        with pytest.raises(ConfigError, match="unknown-1 is a voice of 2 channels .*: pass --channel URL"):
            await name_voice(db, "unknown-1", "Jane Doe", channel=None)
        with pytest.raises(ConfigError, match="no anonymous voice called unknown-9"):
            await name_voice(db, "unknown-9", "Jane Doe", channel=None)
        with pytest.raises(ConfigError, match="cannot name a speaker"):
            await name_voice(db, "unknown-1", "unknown-4", channel=A)

        done = await name_voice(db, "unknown-1", "Jane Doe", channel=A)
        assert done.line() == "unknown-1 → Jane Doe: 3 segments in 2 videos"
        assert await speakers_of(conn, "a1") == ["Jane Doe", "unknown-2", "Jane Doe"]
        assert await speakers_of(conn, "b1") == ["unknown-1"]
        assert [(c, label) for c, label, _ in await kept(conn)] == [(A, "unknown-2"), (B, "unknown-1")]
        row = await conn.fetchrow("SELECT model, files, source FROM voiceprints WHERE name = 'Jane Doe'")
        assert (row["model"], row["files"], row["source"]) == (SPK, "{}", "named")
        hits = await db.search(SearchQuery("line", mode="keyword", speaker="Jane Doe", limit=10))
        assert sorted(h.video_id for h in hits) == ["a1", "a1", "a2"]

        ann = Voiceprint("Ann", person(), SPK, {"ann.wav": "0" * 64})
        await db.save_voiceprints([ann], keep=["Ann"])
        await db.save_voiceprints([], keep=[])  # an enrolment whose voices/ folder is now empty
        assert [p.name for p in await db.voiceprints()] == ["Jane Doe"]

        # another voice named Jane Doe (B's unknown-1): averaged into her voiceprint, and said so
        again = await name_voice(db, "unknown-1", "Jane Doe", channel=B)
        assert again.segments == 1 and "equal weight" in again.note
        assert await conn.fetchval("SELECT count(*) FROM voiceprints") == 1
        # the store numbers on after a named voice: a new voice of A is unknown-3, not a reused 1
        await store(db, item("a3", A, {"?0.0": person()}, ["?0.0"]))
        assert await speakers_of(conn, "a3") == ["unknown-3"]
    finally:
        await db.close()


async def test_merging_voices(fresh_dsn: str, conn: asyncpg.Connection) -> None:
    """Two anonymous voices of one person: the gone one's segments move, weights add up, the row
    goes, its number is not reused. A voice of voices/ cannot be merged away; voices of different
    models are refused."""
    one, two = person(), person()
    db = await open_db(fresh_dsn)
    try:
        await store(db, item("a1", A, {"?0.0": one, "?0.1": two}, ["?0.0", "?0.1", "?0.1"]))
        await store(db, item("b1", B, {"?0.0": two}, ["?0.0"]))
        done = await merge_voices(db, "unknown-1", "unknown-2", channel=A)
        assert done.line() == "unknown-2 → unknown-1: 2 segments in 1 video"
        assert await speakers_of(conn, "a1") == ["unknown-1"] * 3
        assert await kept(conn) == [(A, "unknown-1", 20.0), (B, "unknown-1", 10.0)]
        # a freed label is not given again, and one already on a stored segment counts too
        await store(db, item("a2", A, {"?0.0": person()}, ["?0.0", "unknown-6"]))
        assert await speakers_of(conn, "a2") == ["unknown-7", "unknown-6"]

        await db.save_voiceprints([Voiceprint("Ann", one, SPK, {"a.wav": "0" * 64})], keep=["Ann"])
        await name_voice(db, "unknown-1", "Jane Doe", channel=A)
        with pytest.raises(ConfigError, match="remove that folder first"):
            await merge_voices(db, "Jane Doe", "Ann", channel=None)
        # the other way round is allowed: Jane (named) joins Ann (from voices/)
        done = await merge_voices(db, "Ann", "Jane Doe", channel=None)
        assert done.segments == 3 and await speakers_of(conn, "a1") == ["Ann"] * 3
        assert [p.name for p in await db.voiceprints()] == ["Ann"]
        await db.save_voiceprints(
            [Voiceprint("Bo", two, "other-model", {"b.wav": "1" * 64})], keep=["Ann", "Bo"]
        )
        with pytest.raises(ConfigError, match="different models"):
            await merge_voices(db, "Bo", "unknown-1", channel=B)
    finally:
        await db.close()


async def test_migration_9_keeps_old_global_voices_working(
    fresh_dsn: str, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database from before per-channel labels: each old voice is copied into the channels whose
    segments carry its label, and that channel's next voice numbers on after the old labels."""
    full = schema.MIGRATIONS
    monkeypatch.setattr(schema, "MIGRATIONS", full[:8])
    old_voice = person()
    db = await open_db(fresh_dsn)
    try:
        await db.register_video(item("a1", A, {}, []).transcript.video)
        for idx, label in enumerate(["unknown-2", "unknown-7"]):  # the old schema: no overlap column
            await conn.execute(
                "INSERT INTO segments (video_id, idx, start_s, end_s, text, speaker, embedding, embed_model)"
                " VALUES ('a1', $1, 0, 1, 'old', $2, $3::vector, 'e')",
                idx,
                label,
                str([1.0] + [0.0] * (DIM - 1)),
            )
        await conn.execute(
            "INSERT INTO unknown_speakers (label, embedding, model, weight) VALUES ('unknown-2', $1, $2, 5),"
            " ('unknown-5', $1, $2, 5)",
            str(old_voice.tolist()),
            SPK,
        )
    finally:
        await db.close()
    monkeypatch.setattr(schema, "MIGRATIONS", full)
    db = await open_db(fresh_dsn)
    try:
        assert await kept(conn) == [("", "unknown-5", 5.0), (A, "unknown-2", 5.0)]
        await store(db, item("a2", A, {"?0.0": heard(old_voice), "?0.1": person()}, ["?0.0", "?0.1"]))
        assert await speakers_of(conn, "a2") == ["unknown-2", "unknown-8"]
        assert await conn.fetchval("SELECT bool_or(overlap) FROM segments WHERE video_id = 'a1'") is False
    finally:
        await db.close()


def test_the_speakers_command_names_merges_and_lists(
    fresh_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ytingest speakers name/merge` print what changed; a bad label is one line and exit 2;
    plain `speakers` lists each channel's anonymous voices."""

    async def setup() -> None:
        db = await open_db(fresh_dsn)
        try:
            voices = {"?0.0": person(), "?0.1": person(), "?0.2": person()}
            await store(db, item("a1", A, voices, ["?0.0", "?0.1", "?0.2", "?0.0"]))
            await store(db, item("b1", B, {"?0.0": person()}, ["?0.0"]))
        finally:
            await db.close()

    asyncio.run(setup())
    common = ["--database-url", fresh_dsn, "--home", str(tmp_path), "--log-level", "error"]
    assert main(["speakers", "name", "unknown-1", "Jane Doe", "--channel", A, *common]) == 0
    assert capsys.readouterr().out == "unknown-1 → Jane Doe: 2 segments in 1 video\n"
    assert main(["speakers", "merge", "unknown-2", "unknown-3", *common]) == 0
    assert capsys.readouterr().out == "unknown-3 → unknown-2: 1 segment in 1 video\n"
    assert main(["speakers", "name", "unknown-1", "Bob", *common]) == 0  # only B has one now
    capsys.readouterr()
    assert main(["speakers", "name", "unknown-9", "Bob", *common]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no anonymous voice called unknown-9" in err
    assert main(["speakers", "name", "unknown-2", *common]) == 2
    assert "usage: ytingest speakers name LABEL NAME" in capsys.readouterr().err
    assert main(["speakers", *common]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert "Jane Doe: 2 segments in 1 video (named, spk-model)" in listed
    assert f"unknown-2 (not enrolled) of {A}: 2 segments in 1 video" in listed
