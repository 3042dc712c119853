"""Claims per second the shared job queue (pgqueuer on our embedded PostgreSQL) sustains with 50,
100 and 200 simulated workers, with and without a global ``concurrency_limit``, in one run:

    python -m bench.queue_claims               # ~6.5 min on 2 cores; bench/results/queue_claims.json
    python -m bench.queue_claims --quick       # ~1 min: churn cases only, 50 and 200 workers, short
                                               # windows (bench/results/queue_claims_quick.json)
    python -m bench.queue_claims --held        # held fleets only: pgqueuer's cap vs ytingest's room
                                               # (bench/results/queue_claims_held.json)

A simulated worker is one pgqueuer ``QueueManager`` with its own asyncpg connection, as a real
``ytingest worker`` has: ``batch_size=1``, ``max_concurrent_tasks=2`` (pgqueuer's smallest allowed
value, twice the batch; a real worker allows WORKER_CLAIMS, 8: that changes how many jobs a worker
holds, not how often one at its budget polls), one entrypoint whose handler holds its claim and
returns, so pgqueuer completes the job. The managers run as asyncio
tasks in ``--procs`` child processes (N/procs each), not as N processes: 200 Python processes
would spend the 2 cores on their own interpreters, and one process would make its event loop
the bottleneck. Every case starts on a fresh queue, lets the workers run ``--warmup`` s after
each has made its first dequeue, then measures ``--window`` s.

The cases, for each N:
- ``churn``: a backlog of ``--jobs``; each handler holds its claim ``--hold-ms`` (100 ms), so
  the queue turns over as fast as it can: the claims/s this machine sustains;
- ``churn, cap``: the same with ``concurrency_limit=--cap`` on the entrypoint (a global cap
  across all workers, as for a fleet-wide download limit);
- ``held``: a backlog, every worker holding its two claims for the whole window (a video takes
  minutes to hours): what a busy fleet costs the server while nothing completes; with and
  without the cap, and with ``QueueManager.min_dequeue_poll_interval`` raised from pgqueuer's
  0.1 s to ``--poll-s`` (a worker that found nothing to claim asks again after that long while
  jobs are queued; table-change NOTIFYs still wake it at once);
- ``held, poll 2s, room``: the same held fleet with ytingest's own manager (``RoomyQueue``, as
  ``ytingest worker`` runs it): a worker without room for another video (here: two held) sends
  no dequeue at all, where pgqueuer's cap (``max_concurrent_tasks``) still sends one that finds
  the worker at its budget;
- ``idle``: an empty queue: what N waiting workers cost.
Then ``dequeue_sql``: one connection times the dequeue statement itself (claiming one job;
finding the worker at its budget; finding the global cap full) on a backlog of 1,000 and of
100,000 jobs, and a count of the queue by status (what a status view reads).

Honesty on 2 cores: the workers' Python (pgqueuer's per-manager timers, pydantic parsing of
every job and every NOTIFY) runs on the same two cores as PostgreSQL, so the claims/s here are
what this machine does as a whole, not a database on its own host. The portable figures are the
server's CPU per claim (``pg_ms_per_claim``: CPU-ms of the server's processes in the window /
claims) and per second of a busy fleet (``pg_cpu_s_per_s``), next to the share of the machine
each side used.

Measured per case, in the window, on the database's own clock: claims/s (``picked`` rows in
``pgqueuer_log``), completions/s (``successful`` rows); the dequeue call's latency as a worker
sees it (p50/p95 of the calls that claimed a job, and of all calls); dequeue calls, client
statements and server transactions per claim (``pg_stat_database``; a listening backend that
receives a NOTIFY runs a transaction to read it, so these count NOTIFY deliveries too); CPU of
the server's processes and of the worker processes (psutil); and the most jobs seen picked at
once by a sampler that counts the queue's picked rows every 10 ms (committed state), which must
not exceed ``--cap`` in the capped cases.

Ratios: claims/s at each N relative to the first, within each setting.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import psutil

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).parent.parent
ENTRYPOINT = "video"
MAX_CONNECTIONS = 400  # 200 workers' connections and ours; the server's default is 100
SAMPLE_EVERY_S = 0.01  # how often the window counts the picked jobs (committed state)
HOLD_FOREVER_S = 3600.0  # a held case's handlers: longer than any window (released at the end)


# ---- the child: N/procs simulated workers ------------------------------------------------------


@dataclass
class ChildStats:
    """What one child process saw: each dequeue call (wall end time, seconds, jobs claimed), the
    statements its managers sent per wall-clock second, and which managers have dequeued yet."""

    dequeues: list[tuple[float, float, int]] = field(default_factory=list)
    statements: Counter[int] = field(default_factory=Counter)
    handled: int = 0
    started: set[int] = field(default_factory=set)


async def child(
    dsn: str, managers: int, hold_s: float, cap: int, poll_s: float, room: bool, out: Path
) -> None:
    """Run ``managers`` QueueManagers (``room``: ytingest's ``RoomyQueue``, room for two held) until
    SIGTERM; write ChildStats to ``out``. Prints ``ready`` once every manager has made its first
    dequeue (its start-up catalog checks are behind it)."""
    from pgqueuer import AsyncpgDriver, Queries, QueueManager
    from pgqueuer.models import Job

    from ytingest.workers.claims import RoomyQueue

    stats = ChildStats()
    all_started, release = asyncio.Event(), asyncio.Event()

    class CountingDriver(AsyncpgDriver):
        async def fetch(self, query: str, *args: object) -> list[dict[str, object]]:
            stats.statements[int(time.time())] += 1
            return await super().fetch(query, *args)

        async def execute(self, query: str, *args: object) -> str:
            stats.statements[int(time.time())] += 1
            return await super().execute(query, *args)

    class TimedQueries(Queries):
        async def dequeue(self, *args: Any, **kwargs: Any) -> list[Job]:
            t0 = time.perf_counter()
            jobs = await super().dequeue(*args, **kwargs)
            stats.dequeues.append((time.time(), time.perf_counter() - t0, len(jobs)))
            stats.started.add(id(self))
            if len(stats.started) == managers:
                all_started.set()
            return jobs

    async def handle(job: Job) -> None:
        try:
            await asyncio.wait_for(release.wait(), hold_s)
        except TimeoutError:
            pass
        stats.handled += 1

    qms = []
    for _ in range(managers):
        conn = await asyncpg.connect(dsn)
        qm = (RoomyQueue if room else QueueManager)(TimedQueries(CountingDriver(conn)))
        if isinstance(qm, RoomyQueue):
            qm.has_room = functools.partial(lambda q: len(q.job_context) < 2, qm)
        qm.entrypoint(ENTRYPOINT, concurrency_limit=cap)(handle)
        if poll_s:  # how soon a worker that found nothing to claim asks again while work is queued
            qm.min_dequeue_poll_interval = timedelta(seconds=poll_s)
        qms.append((qm, conn))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    runs = [asyncio.create_task(qm.run(batch_size=1, max_concurrent_tasks=2)) for qm, _ in qms]
    await all_started.wait()
    print("ready", flush=True)
    await stop.wait()
    for qm, _ in qms:
        qm.shutdown.set()
    release.set()
    await asyncio.wait(runs, timeout=15)
    for _, conn in qms:
        await conn.close(timeout=5)
    seen = {"dequeues": stats.dequeues, "statements": dict(stats.statements), "handled": stats.handled}
    await asyncio.to_thread(out.write_text, json.dumps(seen))


# ---- the orchestrator --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    kind: str  # churn | held | idle
    workers: int
    cap: int  # the entrypoint's concurrency_limit; 0: none
    jobs: int
    poll_s: float = 0.0  # QueueManager.min_dequeue_poll_interval; 0: pgqueuer's (0.1 s)
    room: bool = False  # ytingest's RoomyQueue instead of pgqueuer's QueueManager

    @property
    def setting(self) -> str:
        return setting(self.kind, self.cap, self.poll_s, self.room)


def setting(kind: str, cap: int, poll_s: float, room: bool = False) -> str:
    name = kind + (f", cap {cap}" if cap else "") + (f", poll {poll_s:g}s" if poll_s else "")
    return name + (", room" if room else "")


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """CPU seconds of ``procs`` and of their children that have ended (the postmaster's: backends
    and autovacuum workers that came and went)."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def server_procs(pg_dir: Path) -> list[psutil.Process]:
    """The postmaster (first line of postmaster.pid) and every process it started."""
    postmaster = psutil.Process(int((pg_dir / "postmaster.pid").read_text().split()[0]))
    return [postmaster, *postmaster.children(recursive=True)]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def per(a: float, b: float, digits: int = 2) -> float | None:
    return round(a / b, digits) if b else None


async def sample_held(dsn: str, every: float, stop: asyncio.Event) -> tuple[int, int]:
    """(the most jobs seen picked at once, samples taken): committed state, every ``every`` s."""
    conn = await asyncpg.connect(dsn)
    peak = samples = 0
    try:
        while not stop.is_set():
            n = await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE status = 'picked'")
            peak, samples = max(peak, n), samples + 1
            await asyncio.sleep(every)
    finally:
        await conn.close()
    return peak, samples


async def start_server(pg_dir: Path) -> tuple[Any, str]:
    """The embedded server with max_connections raised (a restart), and pgqueuer installed."""
    from pgqueuer import AsyncpgDriver, Queries

    from ytingest.db.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(pg_dir)
    dsn = await pg.start()
    conn = await asyncpg.connect(dsn)
    await conn.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
    await conn.close()
    await pg.stop()
    pg = EmbeddedPostgres(pg_dir)
    dsn = await pg.start()
    conn = await asyncpg.connect(dsn)
    try:
        await Queries(AsyncpgDriver(conn)).install()
    finally:
        await conn.close()
    return pg, dsn


async def fill(conn: asyncpg.Connection, jobs: int) -> None:
    """An empty queue, then ``jobs`` jobs (enqueued 1000 per statement), then a checkpoint."""
    from pgqueuer import AsyncpgDriver, Queries

    await conn.execute("TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics")
    q = Queries(AsyncpgDriver(conn))
    for at in range(0, jobs, 1000):
        k = min(1000, jobs - at)
        await q.enqueue([ENTRYPOINT] * k, [None] * k, [0] * k)
    await conn.execute("VACUUM ANALYZE pgqueuer")
    await conn.execute("CHECKPOINT")


async def db_point(conn: asyncpg.Connection) -> dict[str, Any]:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    row = await conn.fetchrow(
        "SELECT now() AS now, xact_commit + xact_rollback AS xacts FROM pg_stat_database"
        " WHERE datname = current_database()"
    )
    return dict(row)


async def run_case(case: Case, dsn: str, pg_dir: Path, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    await fill(conn, case.jobs)
    split = [case.workers // args.procs + (i < case.workers % args.procs) for i in range(args.procs)]
    outs = [tmp / f"child{i}.json" for i in range(args.procs)]
    hold_s = args.hold_ms / 1000 if case.kind == "churn" else HOLD_FOREVER_S
    children = []
    for n, out in zip(split, outs, strict=True):
        children.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.queue_claims",
                "--child",
                dsn,
                str(n),
                str(hold_s),
                str(case.cap),
                str(case.poll_s),
                str(int(case.room)),
                str(out),
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
        )
    for c in children:
        assert c.stdout is not None
        line = await asyncio.wait_for(c.stdout.readline(), 120)
        if line.strip() != b"ready":
            raise RuntimeError(f"a worker process did not start: {line!r}")
    workers = [psutil.Process(c.pid) for c in children]
    window = args.idle_window if case.kind == "idle" else args.window
    await asyncio.sleep(args.warmup)
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_held(dsn, SAMPLE_EVERY_S, stop))
    me = [psutil.Process()]
    p0, w0, m0, s0 = (
        cpu_seconds(server_procs(pg_dir)),
        cpu_seconds(workers),
        psutil.cpu_times(),
        cpu_seconds(me),
    )
    d0, t0 = await db_point(conn), time.time()
    await asyncio.sleep(window)
    d1, t1 = await db_point(conn), time.time()
    p1, w1, m1, s1 = (
        cpu_seconds(server_procs(pg_dir)),
        cpu_seconds(workers),
        psutil.cpu_times(),
        cpu_seconds(me),
    )
    stop.set()
    held, samples = await sampler
    remaining = await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE status = 'queued'")
    for c in children:
        c.send_signal(signal.SIGTERM)
    for c in children:
        await asyncio.wait_for(c.wait(), 60)
    seen = [json.loads(await asyncio.to_thread(out.read_text)) for out in outs]
    counts = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'picked') AS picked,"
        " count(*) FILTER (WHERE status = 'successful') AS done"
        " FROM pgqueuer_log WHERE created >= $1 AND created < $2",
        d0["now"],
        d1["now"],
    )
    await conn.close()

    elapsed = (d1["now"] - d0["now"]).total_seconds()
    picked, done = counts["picked"], counts["done"]
    xacts = d1["xacts"] - d0["xacts"] - samples  # less the sampler's own
    calls = [d for s in seen for d in s["dequeues"] if t0 <= d[0] < t1]
    statements = sum(n for s in seen for sec, n in s["statements"].items() if t0 <= int(sec) < int(t1))
    statements_s = max(1, int(t1) - int(t0))  # whole seconds counted
    busy = sum(m1) - sum(m0) - (m1.idle - m0.idle) - (m1.iowait - m0.iowait)
    cores = psutil.cpu_count() or 1
    pg_cpu = p1 - p0
    return {
        "kind": case.kind,
        "workers": case.workers,
        "cap": case.cap,
        "poll_s": case.poll_s,
        "room": case.room,
        "jobs": case.jobs,
        "window_s": round(elapsed, 2),
        "claims_per_s": round(picked / elapsed, 1),
        "completions_per_s": round(done / elapsed, 1),
        "queued_left": remaining,
        "dequeue_ms_claimed": {
            "p50": pct([1000 * d[1] for d in calls if d[2]], 0.5),
            "p95": pct([1000 * d[1] for d in calls if d[2]], 0.95),
        },
        "dequeue_ms_all": {
            "p50": pct([1000 * d[1] for d in calls], 0.5),
            "p95": pct([1000 * d[1] for d in calls], 0.95),
        },
        "dequeue_calls_per_s": round(len(calls) / elapsed, 1),
        "dequeue_calls_per_claim": per(len(calls), picked),
        "statements_per_s": round(statements / statements_s, 1),
        "statements_per_claim": per(statements / statements_s * elapsed, picked),
        "xacts_per_s": round(xacts / elapsed, 1),
        "xacts_per_claim": per(xacts, picked),
        "pg_cpu_share": round(pg_cpu / (elapsed * cores), 3),
        "workers_cpu_share": round((w1 - w0) / (elapsed * cores), 3),
        "machine_busy_share": round(busy / ((t1 - t0) * cores), 3),
        # CPU used by anything but the server, the workers and this process: should be ~0
        "other_cpu_share": round((busy - pg_cpu - (w1 - w0) - (s1 - s0)) / ((t1 - t0) * cores), 3),
        "pg_cpu_s_per_s": round(pg_cpu / elapsed, 3),
        "workers_cpu_s_per_s": round((w1 - w0) / elapsed, 3),
        "pg_ms_per_claim": per(1000 * pg_cpu, picked),
        "max_held": held,
        "held_samples": samples,
        "handled": sum(s["handled"] for s in seen),
    }


async def dequeue_sql(dsn: str, backlogs: list[int], calls: int) -> list[dict[str, Any]]:
    """Milliseconds per dequeue call from one connection (round trip, nothing else running) and the
    server's own execution time (EXPLAIN ANALYZE), per backlog and gate shape."""
    from pgqueuer import AsyncpgDriver, Queries
    from pgqueuer.queries import EntrypointExecutionParameter
    from pgqueuer.types import QueueEntrypoint, QueueManagerId

    beat = timedelta(seconds=30)
    entrypoint = QueueEntrypoint(ENTRYPOINT)
    shapes = (  # name, entrypoint concurrency_limit, the worker's budget (max_concurrent_tasks)
        ("claims one", 0, None),
        ("worker at its budget", 0, 2),
        ("global cap full", 8, None),
    )
    conn = await asyncpg.connect(dsn)
    q = Queries(AsyncpgDriver(conn))
    out = []
    try:
        for backlog in backlogs:
            await fill(conn, backlog)
            for name, cap, budget in shapes:
                me = QueueManagerId(uuid.uuid4())
                eps = {entrypoint: EntrypointExecutionParameter(concurrency_limit=cap)}
                if cap or budget:  # fill the gate first
                    for _ in range(cap or budget or 0):
                        await q.dequeue(1, eps, me, budget, beat)
                t0 = time.perf_counter()
                for _ in range(calls):
                    got = await q.dequeue(1, eps, me, budget, beat)
                ms = 1000 * (time.perf_counter() - t0) / calls
                sql = q.qbq.build_dequeue_query(
                    batch_size=1,
                    entrypoints=[entrypoint],
                    concurrency_limits=[cap],
                    queue_manager_id=me,
                    global_concurrency_limit=budget,
                    heartbeat_timeout=beat,
                )
                plan = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + sql.sql, *sql.args)
                lines = [r[0] for r in plan]
                out.append(
                    {
                        "backlog": backlog,
                        "shape": name,
                        "ms_per_call": round(ms, 3),
                        "claimed": bool(got),
                        "server_execution_ms": float(lines[-1].split(":")[1].split()[0]),
                        "seq_scans": [x.strip() for x in lines if "Seq Scan" in x],
                    }
                )
                await conn.execute(
                    "UPDATE pgqueuer SET status = 'queued', queue_manager_id = NULL, slot = NULL"
                    " WHERE status = 'picked'"
                )
            t0 = time.perf_counter()
            for _ in range(max(1, calls // 10)):  # the queue depth by status, as a status view reads it
                await conn.fetch("SELECT status::text, count(*) FROM pgqueuer GROUP BY status")
            ms = 1000 * (time.perf_counter() - t0) / max(1, calls // 10)
            out.append({"backlog": backlog, "shape": "count by status", "ms_per_call": round(ms, 3)})
    finally:
        await conn.close()
    return out


def ratios(rows: list[dict[str, Any]], workers: list[int]) -> dict[str, dict[str, float | None]]:
    """claims/s at each N relative to the first N, per churn setting."""
    out: dict[str, dict[str, float | None]] = {}
    for cap in sorted({r["cap"] for r in rows if r["kind"] == "churn"}):
        by_n = {r["workers"]: r["claims_per_s"] for r in rows if r["kind"] == "churn" and r["cap"] == cap}
        base = by_n.get(workers[0])
        out[_key(cap)] = {f"{n}_vs_{workers[0]}": per(by_n[n], base or 0) for n in by_n}
    return out


def _key(cap: int) -> str:
    return f"churn_cap_{cap}" if cap else "churn"


def table(rows: list[dict[str, Any]], rel: dict[str, dict[str, float | None]], first: int) -> str:
    head = (
        f"{'workers':>7} {'setting':>20} {'claims/s':>8} {'vs ' + str(first):>6} {'deq p50/p95 ms':>15}"
        f" {'deq/s':>6} {'stmt/s':>6} {'xact/s':>6} {'xact/claim':>10} {'pg cores':>8} {'wk cores':>8}"
        f" {'pg ms/claim':>11} {'held':>4}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        vs = rel.get(_key(r["cap"]), {}).get(f"{r['workers']}_vs_{first}") if r["kind"] == "churn" else None
        d = r["dequeue_ms_claimed"] if r["kind"] == "churn" else r["dequeue_ms_all"]
        lat = f"{d['p50']}/{d['p95']}" if d["p50"] is not None else "-"
        name = setting(r["kind"], r["cap"], r["poll_s"], r.get("room", False))
        lines.append(
            f"{r['workers']:>7} {name:>20} {r['claims_per_s']:>8} {vs if vs is not None else '-':>6}"
            f" {lat:>15} {r['dequeue_calls_per_s']:>6.0f} {r['statements_per_s']:>6.0f}"
            f" {r['xacts_per_s']:>6.0f} {str(r['xacts_per_claim'] or '-'):>10} {r['pg_cpu_s_per_s']:>8.2f}"
            f" {r['workers_cpu_s_per_s']:>8.2f} {str(r['pg_ms_per_claim'] or '-'):>11} {r['max_held']:>4}"
        )
    return "\n".join(lines)


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    workers = [int(x) for x in args.workers.split(",")]
    cases = [Case("churn", n, 0, args.jobs) for n in workers]
    cases += [Case("churn", n, args.cap, args.capped_jobs) for n in workers]
    if not args.quick:
        cases += [Case("held", n, 0, args.capped_jobs) for n in workers]
        cases += [Case("held", n, args.cap, args.capped_jobs) for n in workers]
        cases += [Case("held", n, 0, args.capped_jobs, args.poll_s) for n in workers]
        cases += [Case("held", n, 0, args.capped_jobs, args.poll_s, room=True) for n in workers]
        cases += [Case("idle", n, 0, 0) for n in workers]
    if args.held:  # side by side: pgqueuer's cap and ytingest's room, the same poll
        cases = [
            Case("held", n, 0, args.capped_jobs, args.poll_s, room) for n in workers for room in (False, True)
        ]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="queue-claims-") as tmp_name:
        tmp = Path(tmp_name)
        pg, dsn = await start_server(tmp / "pg")
        rows = []
        try:
            for case in cases:
                t = time.perf_counter()
                rows.append(await run_case(case, dsn, tmp / "pg", tmp, args))
                r = rows[-1]
                print(
                    f"# {case.workers} workers, {case.setting}: {r['claims_per_s']} claims/s,"
                    f" server {r['pg_cpu_s_per_s']} CPU-s/s, other processes"
                    f" {r['other_cpu_share']:.0%} of the machine ({time.perf_counter() - t:.0f} s)",
                    flush=True,
                )
            t = time.perf_counter()
            sql = await dequeue_sql(dsn, args.backlogs, args.sql_calls)
            print(f"# dequeue SQL ({time.perf_counter() - t:.0f} s)", flush=True)
        finally:
            await pg.stop()
    rel = ratios(rows, workers)
    print(table(rows, rel, workers[0]))
    print(f"\n{'backlog':>8} {'dequeue shape':>22} {'ms/call':>8} {'server ms':>9} seq scans")
    for s in sql:
        print(
            f"{s['backlog']:>8} {s['shape']:>22} {s['ms_per_call']:>8} {s.get('server_execution_ms', '-'):>9}"
            f" {len(s.get('seq_scans', [])) if 'seq_scans' in s else '-'}"
        )
    return {
        "machine": f"{platform.machine()} {psutil.cpu_count()} cores",
        "settings": {
            "workers": workers,
            "procs": args.procs,
            "hold_ms": args.hold_ms,
            "cap": args.cap,
            "jobs": args.jobs,
            "capped_jobs": args.capped_jobs,
            "warmup_s": args.warmup,
            "window_s": args.window,
            "idle_window_s": args.idle_window,
            "poll_s": args.poll_s,
            "batch_size": 1,
            "max_concurrent_tasks": 2,
            "pgqueuer": _version("pgqueuer"),
            "postgres_max_connections": MAX_CONNECTIONS,
        },
        "cases": rows,
        "ratios_vs_first": rel,
        "dequeue_sql": sql,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        from ytingest.eventloop import run

        dsn, managers, hold_s, cap, poll_s, room, out = sys.argv[2:9]
        run(child(dsn, int(managers), float(hold_s), int(cap), float(poll_s), room == "1", Path(out)))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.queue_claims")
    parser.add_argument("--quick", action="store_true", help="~1 minute: 50 and 200 workers, short windows")
    parser.add_argument(
        "--held", action="store_true", help="held fleets only: pgqueuer's cap vs ytingest's room"
    )
    parser.add_argument("--workers", default=None, help="worker counts, the first is the base (50,100,200)")
    parser.add_argument("--procs", type=int, default=4, help="processes the workers are spread over")
    parser.add_argument("--hold-ms", type=float, default=100.0, help="a churn handler's hold")
    parser.add_argument("--cap", type=int, default=8, help="concurrency_limit of the capped cases")
    parser.add_argument("--jobs", type=int, default=20_000, help="backlog of an uncapped churn case")
    parser.add_argument("--capped-jobs", type=int, default=5_000, help="backlog of the other cases")
    parser.add_argument("--poll-s", type=float, default=2.0, help="poll interval of the 'held, poll' cases")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=12.0, help="measured seconds per case")
    parser.add_argument("--idle-window", type=float, default=6.0)
    parser.add_argument("--backlogs", default="1000,100000", help="backlogs for the dequeue SQL timing")
    parser.add_argument("--sql-calls", type=int, default=200, help="dequeue calls timed per shape")
    args = parser.parse_args()
    if args.quick:
        args.workers = args.workers or "50,200"
        args.jobs, args.capped_jobs = min(args.jobs, 5_000), min(args.capped_jobs, 2_000)
        args.warmup, args.window = 1.0, 3.0
        args.backlogs, args.sql_calls = "1000", 50
    args.workers = args.workers or "50,100,200"
    args.backlogs = [int(x) for x in str(args.backlogs).split(",")]
    report = asyncio.run(orchestrate(args))
    RESULTS.mkdir(exist_ok=True)
    name = (
        "queue_claims_quick.json"
        if args.quick
        else "queue_claims_held.json"
        if args.held
        else "queue_claims.json"
    )
    (RESULTS / name).write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"wall {report['wall_s']} s; wrote bench/results/{name}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
