"""The cluster's shared state on real PostgreSQL: the global download gate (slots held as session
advisory locks across workers' connections, freed when a holder dies; the global pace; the global
pause; stopping while waiting), claims and their verdicts, workers' rows, the job queue's dedupe,
and the cleanup of dead workers' audio folders."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from ytingest.db.database import Database
from ytingest.db.jobs import enqueue_refs, install_queue, jobs_left, payload_of, queries_on, ref_of
from ytingest.db.workers import GATE_LOCKS, ClaimVerdict
from ytingest.errors import ConfigError
from ytingest.items import VideoRef
from ytingest.workers.claims import clean_dead_workers
from ytingest.workers.gate import DownloadGate, Pass

DIM = 8


@pytest.fixture
async def db(fresh_dsn: str) -> AsyncIterator[Database]:
    d = Database(fresh_dsn, pool_size=4, retry_s=2.0)
    await d.connect()
    await d.migrate(DIM)
    yield d
    await d.close()


@asynccontextmanager
async def gates(db: Database, n: int, **kw: float) -> AsyncIterator[list[DownloadGate]]:
    """``n`` gates, each on its own connection, as ``n`` workers would have."""
    opened = [DownloadGate(db, **kw) for _ in range(n)]  # type: ignore[arg-type]
    try:
        for g in opened:
            await g.open()
        yield opened
    finally:
        for g in opened:
            await g.close()


def backend_pid(gate: DownloadGate) -> int:
    assert gate._conn is not None
    return gate._conn.backend_pid


async def slots_held(conn: asyncpg.Connection, pid: int | None = None) -> int:
    """Gate slots granted now (to ``pid`` only, when given)."""
    n = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objsubid = 2"
        " AND granted AND ($2::int IS NULL OR pid = $2)",
        GATE_LOCKS,
        pid,
    )
    return int(n)


async def enter_within(gate: DownloadGate, seconds: float) -> tuple[Pass | None, float]:
    """``gate.enter`` with its stop event set after ``seconds``; the pass and how long it took."""
    stop = asyncio.Event()
    handle = asyncio.get_running_loop().call_later(seconds, stop.set)
    t0 = time.monotonic()
    try:
        got = await gate.enter(stop)
    finally:
        handle.cancel()
    return got, time.monotonic() - t0


async def hold_downloads(gs: list[DownloadGate], per_gate: int, hold_s: float) -> int:
    """``per_gate`` concurrent downloads through each gate, each holding its pass ``hold_s``;
    the most held at once."""
    stop, holding, peak = asyncio.Event(), 0, 0

    async def download(gate: DownloadGate) -> None:
        nonlocal holding, peak
        got = await gate.enter(stop)
        assert got is not None
        holding += 1
        peak = max(peak, holding)
        try:
            await asyncio.sleep(hold_s)
        finally:
            holding -= 1
            await gate.leave(got)

    async with asyncio.timeout(20):
        await asyncio.gather(*(download(g) for g in gs for _ in range(per_gate)))
    return peak


# --- the download gate: slots --------------------------------------------------------------------


async def test_gate_caps_concurrent_downloads_of_three_workers(db: Database) -> None:
    """3 workers (3 gates, 3 connections), 2 downloads each at once, concurrency=2: at most 2 hold
    a pass at any moment, and 2 do."""
    async with gates(db, 3, concurrency=2) as gs:
        peak = await hold_downloads(gs, per_gate=2, hold_s=0.3)
    assert peak == 2


async def test_gate_caps_concurrent_downloads_across_connections(db: Database) -> None:
    """6 workers with one download each, concurrency=2: at most 2 hold a pass at once, and 2 do."""
    async with gates(db, 6, concurrency=2) as gs:
        peak = await hold_downloads(gs, per_gate=1, hold_s=0.3)
    assert peak == 2


async def test_one_workers_two_downloads_take_both_slots(db: Database) -> None:
    """One worker's two downloads at once take both slots of concurrency=2: another worker waits,
    and the cluster counts 2 downloads."""
    async with gates(db, 2, concurrency=2) as (a, b):
        first, second = await enter_within(a, 2.0), await enter_within(a, 2.0)
        assert first[0] is not None and second[0] is not None
        assert {first[0].slot, second[0].slot} == {0, 1}
        assert (await db.cluster_totals())["downloads"] == 2
        assert (await enter_within(b, 0.8))[0] is None


async def test_held_slots_are_counted_and_a_third_download_waits(
    db: Database, conn: asyncpg.Connection
) -> None:
    """Two workers hold the two slots: cluster_totals counts 2 downloads, a third worker gets no pass
    while they hold, and gets one once a slot is left."""
    async with gates(db, 3, concurrency=2) as (a, b, c):
        pa, _ = await enter_within(a, 2.0)
        pb, _ = await enter_within(b, 2.0)
        assert pa is not None and pb is not None and {pa.slot, pb.slot} == {0, 1}
        assert await slots_held(conn, backend_pid(a)) == 1
        assert (await db.cluster_totals())["downloads"] == 2
        assert (await enter_within(c, 0.8))[0] is None
        assert await slots_held(conn, backend_pid(c)) == 0
        await a.leave(pa)
        pc, took = await enter_within(c, 3.0)
        assert pc is not None and pc.slot == pa.slot and took < 2.0
        assert (await db.cluster_totals())["downloads"] == 2
        await b.leave(pb)
        await c.leave(pc)
        assert (await db.cluster_totals())["downloads"] == 0


async def test_a_dead_holders_slot_is_freed(db: Database, conn: asyncpg.Connection) -> None:
    """A worker killed outright (its backend terminated) loses its slot at once: a waiting worker gets
    it within a poll or two, while the live holder keeps its own."""
    async with gates(db, 3, concurrency=2) as (dead, live, waiting):
        pd, _ = await enter_within(dead, 2.0)
        pl, _ = await enter_within(live, 2.0)
        assert pd is not None and pl is not None
        assert (await enter_within(waiting, 0.6))[0] is None
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", backend_pid(dead))
        pw, took = await enter_within(waiting, 5.0)
        assert pw is not None and pw.slot == pd.slot
        assert took < 2.5  # POLL_S 0.5 with jitter: a couple of polls at most
        assert await slots_held(conn, backend_pid(live)) == 1
        assert await slots_held(conn) == 2
        await live.leave(pl)
        await waiting.leave(pw)


async def test_a_gate_whose_link_broke_under_it_closes_without_raising(db: Database) -> None:
    """Closing writes a goodbye to the server; on a link already broken (a terminated backend the
    client has not noticed yet) that write fails with EPIPE, and close must drop the connection
    instead of raising over the error that really ended the run (it raised BrokenPipeError)."""
    gate = DownloadGate(db, concurrency=1)  # type: ignore[arg-type]
    await gate.open()
    assert gate._conn is not None
    conn = gate._conn._conn
    conn._transport.get_extra_info("socket").shutdown(socket.SHUT_WR)  # type: ignore[attr-defined]
    await gate.close()
    assert conn.is_closed()


async def test_a_gate_whose_connection_is_lost_reconnects_and_keeps_the_cap(
    db: Database, conn: asyncpg.Connection
) -> None:
    """cap=1: A holds the slot and A's connection dies. A's download goes on (no lock now), so a
    new pass from A waits until it ends, and A's old pass frees nothing of anyone else's."""
    async with gates(db, 2, concurrency=1) as (a, b):
        old, _ = await enter_within(a, 2.0)
        assert old is not None
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", backend_pid(a))
        await asyncio.sleep(0.2)
        assert (await enter_within(a, 1.5))[0] is None  # reconnected, but the old download still runs
        got_b, _ = await enter_within(b, 2.0)  # the server freed A's slot: another worker may take it
        assert got_b is not None and await slots_held(conn) == 1
        await a.leave(old)  # the old download ends: it must not unlock anything of B's
        assert await slots_held(conn, backend_pid(b)) == 1
        assert (await enter_within(a, 1.0))[0] is None  # cap 1, held by B
        await b.leave(got_b)
        new, _ = await enter_within(a, 2.0)
        assert new is not None and await slots_held(conn, backend_pid(a)) == 1
        await a.leave(new)


async def test_closing_a_gate_frees_its_slots(db: Database, conn: asyncpg.Connection) -> None:
    """A worker that stops (its gate closed) holds no slot afterwards."""
    async with gates(db, 1, concurrency=2) as (a,):
        assert (await enter_within(a, 2.0))[0] is not None
        assert await slots_held(conn) == 1
    await asyncio.sleep(0.2)  # the server notices the closed session
    assert await slots_held(conn) == 0


# --- the download gate: stopping, pace, pause -----------------------------------------------------


async def test_enter_returns_none_when_stopped_waiting_for_a_slot(
    db: Database, conn: asyncpg.Connection
) -> None:
    """Stop set while every slot is held: enter returns None soon, holding nothing."""
    async with gates(db, 2, concurrency=1) as (a, b):
        pa, _ = await enter_within(a, 2.0)
        assert pa is not None
        got, took = await enter_within(b, 0.3)
        assert got is None and took < 1.5
        assert await slots_held(conn, backend_pid(b)) == 0
        await a.leave(pa)


async def test_enter_returns_none_and_leaves_its_slot_when_stopped_waiting_for_its_start(
    db: Database, conn: asyncpg.Connection
) -> None:
    """Stop set while a download waits for its start time (the global pace): None, and the slot it
    had taken is given back."""
    async with gates(db, 2, concurrency=2, per_hour=360.0) as (a, b):  # one start per 10 s
        pa, _ = await enter_within(a, 2.0)
        assert pa is not None
        got, took = await enter_within(b, 0.3)
        assert got is None and took < 1.5
        assert await slots_held(conn, backend_pid(b)) == 0
        await a.leave(pa)


async def test_enter_returns_none_when_stopped_during_a_pause(db: Database, conn: asyncpg.Connection) -> None:
    """Stop set during a global pause: None at once, nothing held."""
    async with gates(db, 1, concurrency=2) as (a,):
        await a.pause(30.0, "429")
        got, took = await enter_within(a, 0.3)
        assert got is None and took < 1.5
        assert await slots_held(conn) == 0


async def test_enter_returns_none_when_stop_is_already_set(db: Database, conn: asyncpg.Connection) -> None:
    """A stop set before enter: None, nothing held."""
    stop = asyncio.Event()
    stop.set()
    async with gates(db, 1, concurrency=2) as (a,):
        assert await a.enter(stop) is None
        assert await slots_held(conn) == 0


async def test_global_pace_spaces_starts_of_all_workers(db: Database) -> None:
    """per_hour = 4/s: five downloads from two workers at once start >= 0.2 s apart, >= ~1 s in all."""
    stop = asyncio.Event()
    starts: list[float] = []
    async with gates(db, 2, per_hour=3600 * 4) as gs:

        async def start(gate: DownloadGate) -> None:
            got = await gate.enter(stop)
            assert got is not None and got.slot is None  # no cap: no slot
            starts.append(time.monotonic())
            await gate.leave(got)

        async with asyncio.timeout(15):
            await asyncio.gather(*(start(gs[i % 2]) for i in range(5)))
    starts.sort()
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert starts[-1] - starts[0] >= 0.9, gaps
    assert min(gaps) >= 0.2, gaps


async def test_a_pause_holds_every_worker_and_a_shorter_one_does_not_shorten_it(db: Database) -> None:
    """Worker A is rate-limited (pause 1 s), then a shorter pause follows: worker B's next download
    waits >= ~1 s; the cluster shows the pause."""
    async with gates(db, 2, concurrency=2) as (a, b):
        t0 = time.monotonic()
        await a.pause(1.0, "429")
        await a.pause(0.1, "bot-check")
        totals = await db.cluster_totals()
        assert totals["paused_s"] > 0.7
        got, _ = await enter_within(b, 5.0)
        assert got is not None
        assert time.monotonic() - t0 >= 0.9
        await b.leave(got)
        assert (await db.cluster_totals())["paused_s"] == 0


async def test_the_pause_in_force_keeps_its_reason(db: Database) -> None:
    """A shorter pause after a longer one leaves the longer one's reason on show."""
    async with gates(db, 1) as (a,):
        await a.pause(30.0, "429")
        await a.pause(0.1, "bot-check")
        assert (await db.cluster_totals())["pause_reason"] == "429"


# --- claims -----------------------------------------------------------------------------------------


async def register(db: Database, *ids: str) -> None:
    for vid in ids:
        await db.register_video(VideoRef(vid, f"http://x/{vid}", title=vid))


async def attempts(conn: asyncpg.Connection, vid: str) -> int:
    return int(await conn.fetchval("SELECT attempts FROM videos WHERE id = $1", vid))


async def claims_of(conn: asyncpg.Connection, vid: str) -> list[tuple[str, str | None, bool]]:
    """(worker, outcome, ended) per claim of ``vid``, oldest first."""
    rows = await conn.fetch(
        "SELECT worker, outcome, ended_at IS NOT NULL AS ended FROM claims WHERE video_id = $1 ORDER BY id",
        vid,
    )
    return [(r["worker"], r["outcome"], r["ended"]) for r in rows]


async def test_a_second_claim_counts_the_first_holder_as_dead(db: Database, conn: asyncpg.Connection) -> None:
    """First claim: go, the attempt counted at registration stays 1. A claim by another worker while
    the first is open: the first is closed as died, go with deaths=1, attempts 2. end_claim records
    the outcome; once stored, the next claim says done and opens nothing."""
    await register(db, "v1")
    assert await db.begin_claim("v1", "w1", max_deaths=3) == ClaimVerdict("go", 0, "")
    assert await attempts(conn, "v1") == 1
    assert await claims_of(conn, "v1") == [("w1", None, False)]

    assert await db.begin_claim("v1", "w2", max_deaths=3) == ClaimVerdict("go", 1, "w1")
    assert await attempts(conn, "v1") == 2
    assert await claims_of(conn, "v1") == [("w1", "died", True), ("w2", None, False)]

    await db.end_claim("v1", "w1", "stored")  # not w1's any more: nothing changes
    await db.end_claim("v1", "w2", "stored")
    assert await claims_of(conn, "v1") == [("w1", "died", True), ("w2", "stored", True)]

    await conn.execute("UPDATE videos SET status = 'done', done_at = now() WHERE id = 'v1'")
    assert (await db.begin_claim("v1", "w3", max_deaths=3)).action == "done"
    assert len(await claims_of(conn, "v1")) == 2
    assert await attempts(conn, "v1") == 2


async def test_a_released_video_claimed_again_is_another_attempt_not_a_death(
    db: Database, conn: asyncpg.Connection
) -> None:
    """A claim closed as released (the worker stopped) and claimed again: go, no death, attempts +1."""
    await register(db, "v1")
    assert (await db.begin_claim("v1", "w1", max_deaths=2)).action == "go"
    await db.end_claim("v1", "w1", "released")
    assert await db.begin_claim("v1", "w1", max_deaths=2) == ClaimVerdict("go", 0, "")
    assert await attempts(conn, "v1") == 2
    assert await claims_of(conn, "v1") == [("w1", "released", True), ("w1", None, False)]


async def test_a_video_that_killed_max_deaths_workers_is_poison(
    db: Database, conn: asyncpg.Connection
) -> None:
    """max_deaths=2: after two workers died holding it, the next claim says poison, names the last
    of them; until the worker has failed the video and closed it as poison, asking again says
    poison again (a failure to record it is retried, not forgotten); a later retry starts anew."""
    await register(db, "v2")
    assert (await db.begin_claim("v2", "w1", max_deaths=2)).action == "go"
    assert await db.begin_claim("v2", "w2", max_deaths=2) == ClaimVerdict("go", 1, "w1")
    assert await db.begin_claim("v2", "w3", max_deaths=2) == ClaimVerdict("poison", 2, "w2")
    assert (await db.begin_claim("v2", "w3", max_deaths=2)).action == "poison"
    await db.end_claim_as_poison("v2", "w3")
    assert await claims_of(conn, "v2") == [("w1", "died", True), ("w2", "died", True), ("w3", "failed", True)]
    assert await attempts(conn, "v2") == 2
    await conn.execute("UPDATE videos SET status = 'pending', permanent = false WHERE id = 'v2'")
    assert await db.begin_claim("v2", "w4", max_deaths=2) == ClaimVerdict("go", 0, "")  # retried: anew


async def test_failed_videos_permanent_or_not(db: Database, conn: asyncpg.Connection) -> None:
    """Failed permanently: the claim says failed. Failed for now: go, and the video is pending again."""
    await register(db, "gone", "flaky")
    await db.mark_failed("gone", "download", "removed by uploader", permanent=True)
    await db.mark_failed("flaky", "download", "timeout")
    assert (await db.begin_claim("gone", "w1", max_deaths=2)).action == "failed"
    assert await claims_of(conn, "gone") == []
    assert (await db.begin_claim("flaky", "w1", max_deaths=2)).action == "go"
    assert await conn.fetchval("SELECT status FROM videos WHERE id = 'flaky'") == "pending"


async def test_a_claim_of_an_unregistered_video_is_a_config_error(db: Database) -> None:
    """A queued video with no row in videos: ConfigError, not a silent go."""
    with pytest.raises(ConfigError, match="not registered"):
        await db.begin_claim("nope", "w1", max_deaths=2)


async def test_concurrent_claims_of_one_video_open_one_claim_each_in_turn(
    db: Database, conn: asyncpg.Connection
) -> None:
    """Four workers claim one video at once: the row lock orders them, so exactly one claim stays
    open and the others are closed as died."""
    await register(db, "v1")
    verdicts = await asyncio.gather(*(db.begin_claim("v1", f"w{i}", max_deaths=10) for i in range(4)))
    assert sorted(v.deaths for v in verdicts) == [0, 1, 2, 3]
    rows = await claims_of(conn, "v1")
    assert sum(not ended for _, _, ended in rows) == 1
    assert [o for _, o, _ in rows].count("died") == 3


# --- workers --------------------------------------------------------------------------------------


async def test_a_live_workers_name_cannot_be_taken(db: Database, conn: asyncpg.Connection) -> None:
    """Same name, another pid, while the first beats: ConfigError. Once its heartbeat is older than
    the lease (or it stopped), the name can be taken; workers() and live_worker_names agree."""
    await db.register_worker("gpu1", host="h1", pid=100, gpu="H200", lease_s=30)
    await db.register_worker("cpu1", host="h2", pid=200, gpu=None, lease_s=30)
    await db.register_worker("gpu1", host="h1", pid=100, gpu="H200", lease_s=30)  # the same process again
    with pytest.raises(ConfigError, match="gpu1"):
        await db.register_worker("gpu1", host="h1", pid=101, gpu="H200", lease_s=30)
    with pytest.raises(ConfigError):
        await db.register_worker("gpu1", host="h9", pid=100, gpu=None, lease_s=30)
    assert await db.live_worker_names(lease_s=30) == {"gpu1", "cpu1"}

    await db.worker_beat("cpu1", state="running", in_flight=2, done=7, failed=1)
    await conn.execute("UPDATE workers SET seen_at = now() - interval '1 minute' WHERE name = 'gpu1'")
    rows = {r["name"]: r for r in await db.workers(lease_s=30)}
    assert rows["gpu1"]["live"] is False and rows["cpu1"]["live"] is True
    assert (rows["cpu1"]["in_flight"], rows["cpu1"]["done"], rows["cpu1"]["failed"]) == (2, 7, 1)
    assert rows["gpu1"]["seen_s_ago"] >= 59
    assert await db.live_worker_names(lease_s=30) == {"cpu1"}

    await db.register_worker("gpu1", host="h3", pid=300, gpu="A100", lease_s=30)  # the dead one's name
    row = await conn.fetchrow("SELECT host, pid, gpu, state, done FROM workers WHERE name = 'gpu1'")
    assert tuple(row) == ("h3", 300, "A100", "running", 0)
    assert await db.live_worker_names(lease_s=30) == {"gpu1", "cpu1"}

    await db.worker_beat("cpu1", state="stopped", in_flight=0, done=7, failed=1)
    assert await db.live_worker_names(lease_s=30) == {"gpu1"}
    await db.register_worker("cpu1", host="h4", pid=400, gpu=None, lease_s=30)  # a stopped one's name


async def test_a_tiny_lease_makes_a_worker_dead(db: Database) -> None:
    """With a lease shorter than the time since the last beat, the worker is not live."""
    await db.register_worker("w", host="h", pid=1, gpu=None, lease_s=30)
    await asyncio.sleep(0.2)
    assert await db.live_worker_names(lease_s=0.05) == set()
    await db.register_worker("w", host="h", pid=2, gpu=None, lease_s=0.05)
    assert await db.live_worker_names(lease_s=30) == {"w"}


# --- the job queue --------------------------------------------------------------------------------


async def test_enqueue_dedupes_by_video_and_counts_jobs_left(db: Database, fresh_dsn: str) -> None:
    """install_queue is idempotent (also from two connections at once); the same 3 videos queued twice
    add 3 then 0 jobs; is_queued says so; jobs_left and cluster_totals count 3."""
    refs = [VideoRef(f"v{i}", f"http://x/v{i}", title=f"t{i}", duration=1.5 * i) for i in range(3)]
    assert not await db.is_queued("v0")  # no queue table yet
    c1, c2 = await asyncpg.connect(fresh_dsn), await asyncpg.connect(fresh_dsn)
    try:
        await asyncio.gather(install_queue(c1), install_queue(c2))
        await install_queue(c1)
        assert await enqueue_refs(c1, refs) == 3
        assert await enqueue_refs(c2, refs) == 0
        assert await enqueue_refs(c1, []) == 0
        assert await enqueue_refs(c2, [refs[0], VideoRef("v9", "http://x/v9")]) == 1
        for r in refs:
            assert await db.is_queued(r.id)
        assert not await db.is_queued("v5")
        assert await jobs_left(queries_on(c1)) == 4
        assert (await db.cluster_totals())["queue"]["queued"] == 4
        payload = await c1.fetchval("SELECT payload FROM pgqueuer WHERE dedupe_key = 'v2'")
        assert ref_of(payload) == refs[2]
    finally:
        await c1.close()
        await c2.close()


async def test_racing_enqueues_add_each_video_once(fresh_dsn: str, db: Database) -> None:
    """Two enqueuers racing with overlapping videos add each video once."""
    a = [VideoRef(f"v{i}", f"http://x/v{i}") for i in range(0, 30)]
    b = [VideoRef(f"v{i}", f"http://x/v{i}") for i in range(15, 45)]
    c1, c2 = await asyncpg.connect(fresh_dsn), await asyncpg.connect(fresh_dsn)
    try:
        await install_queue(c1)
        added = await asyncio.gather(enqueue_refs(c1, a), enqueue_refs(c2, b))
        assert sum(added) == 45
        assert await jobs_left(queries_on(c2)) == 45
    finally:
        await c1.close()
        await c2.close()


def test_a_jobs_payload_round_trips_and_ignores_unknown_keys() -> None:
    """ref_of(payload_of(ref)) is ref; a newer ytingest's extra keys are ignored; None is no crash."""
    ref = VideoRef("v", "http://x/v", "T", 3.0, "chan", "http://w/v", "2024-01-02", "was_live", "C", "UC1")
    assert ref_of(payload_of(ref)) == ref
    assert ref_of(b'{"id": "v", "url": "u", "new_field": 1}') == VideoRef("v", "u")
    with pytest.raises(TypeError):  # no id: not a job of ours
        ref_of(None)


# --- dead workers' audio ------------------------------------------------------------------------------


def test_clean_dead_workers_removes_only_dead_workers_audio(tmp_path: Path) -> None:
    """Dead workers' audio folders go; live workers', this worker's, other files and folders stay; an
    odd folder name is just a name (nothing outside workers/ is touched)."""
    workers = tmp_path / "workers"
    odd = "..; rm -rf $HOME * ?[x]\\"
    for name in ("dead", "live", "me", odd, "noaudio"):
        (workers / name).mkdir(parents=True)
        if name != "noaudio":
            (workers / name / "audio").mkdir()
            (workers / name / "audio" / "a.m4a").write_bytes(b"x")
        (workers / name / "worker.log").write_text("log")
    (workers / "stray-file").write_text("not a folder")
    outside = tmp_path / "audio"
    outside.mkdir()
    (outside / "keep.m4a").write_bytes(b"x")

    removed = clean_dead_workers(workers, live={"live", "../audio", ".."}, me="me")

    assert sorted(removed) == sorted(["dead", odd])
    assert not (workers / "dead" / "audio").exists() and not (workers / odd / "audio").exists()
    assert (workers / "dead" / "worker.log").exists() and (workers / odd / "worker.log").exists()
    assert (workers / "live" / "audio" / "a.m4a").exists()
    assert (workers / "me" / "audio" / "a.m4a").exists()
    assert (workers / "stray-file").exists() and (outside / "keep.m4a").exists()
    assert clean_dead_workers(workers, live={"live"}, me="me") == []  # nothing left to remove
    assert clean_dead_workers(tmp_path / "missing", live=set(), me="me") == []


async def test_a_pass_is_given_back_once_and_a_cancelled_wait_gives_its_slot_back(
    db: Database, conn: asyncpg.Connection
) -> None:
    """Leaving twice unlocks once (a second pass on the slot is not freed by the first's double
    leave); a download cancelled while it waits for its start time holds no slot afterwards."""
    async with gates(db, 1, concurrency=2, per_hour=3600 / 5) as (a,):  # one start per 5 s
        first, _ = await enter_within(a, 2.0)
        assert first is not None
        await a.leave(first)
        await a.leave(first)
        assert await slots_held(conn) == 0 and a._out == {}
        waiting = asyncio.create_task(a.enter(asyncio.Event()))  # holds a slot until its start time
        await asyncio.sleep(1.0)
        assert await slots_held(conn) == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0.2)
        assert await slots_held(conn) == 0 and a._out == {}
