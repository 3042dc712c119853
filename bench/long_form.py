"""Long-form inputs (15 min … 3 h of real speech in .m4a, as YouTube serves it), in one run:

    python -m bench.long_form                        # 15, 60 and 180 minutes (~30 min on 2 cores)
    python -m bench.long_form --minutes 15,60        # other lengths
    python -m bench.long_form --short                # 5 and 15 minutes (make bench)

(a) ceiling: faster-whisper's own ``BatchedInferencePipeline`` (the bundled tiny.en, CPU int8,
    batch_size 8, VAD on, timestamps on, beam 1 as ytingest) on each file already on disk, in a
    fresh process per file: wall time, audio-s/s, segments, and that process's peak RSS;
(b) ytingest end to end: ``ytingest stream --json`` of a channel of all those episodes, served by
    ChannelServer with a per-connection bandwidth that downloads a file as fast as the ceiling
    transcribes it (bytes per audio-second × the ceiling's audio-s/s; ``--bandwidth`` to pick),
    in a subprocess with its own YTINGEST_HOME (embedded PostgreSQL). Wall time; ratio to the
    ceiling; and the best wall time any pipeline could reach that downloads whole files at that
    bandwidth and then transcribes them at the ceiling's rate one after another ("bound");
(c) peak RSS per episode length: a fresh ``ytingest stream`` of a channel of ONE episode
    (unthrottled), RSS of the CLI's process tree (CLI + decoder child + yt-dlp) sampled every
    0.2 s, without the PostgreSQL server (reported apart); ratios to the shortest length;
(d) files per ASR batch: ``ytingest stream --log-format json`` on the bundled short-clip channel,
    unthrottled; the ``transcribe_start`` events' ``batch_files``;
(e) the first window: a 60-minute episode in WebM/Opus (YouTube's bestaudio), served throttled
    (the bandwidth of (b), or one that takes ``--download-s``), streamed with
    DECODE_WHILE_DOWNLOADING off (before) and on (after), side by side: the seconds from the
    ``download_start`` event to the first ``transcribe_start`` (the first window in the model),
    and their ratio to the download's own time (``download_done``'s ``ms``). The run is stopped
    (two SIGINTs) once both are logged: the rest is (b)'s business.

    python -m bench.long_form --first-window          # (e) alone (~5 min on 2 cores)
    python -m bench.long_form --memory-only --minutes 15,180   # (c) alone

The harness knows only the CLI, its ``--json`` summary and its JSON log events, so it measures
any version of the pipeline. Episodes are made once into ``--cache`` (default
``~/.cache/ytingest/long-episodes``). Writes bench/results/long_form.json (long_form_short.json
for ``--short``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from ytingest.testing import ChannelServer, Episode, serve_in_thread
from ytingest.testing.long_episodes import default_cache_dir, long_episode

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).parent.parent  # the CLI runs from this tree (python -m ytingest)
BATCH_SIZE = 8
BEAM_SIZE = 1  # ytingest's WhisperTranscriber default
FIRST_WINDOW_MIN = 60.0  # (e)'s episode
DOWNLOAD_S = 120.0  # (e) alone: its download's length unless --bandwidth


# ---- RSS of a process tree -------------------------------------------------------------------


@dataclass
class TreeRss:
    """Samples the RSS of ``pid`` and its descendants every ``every`` s, PostgreSQL servers apart.

    ``peak`` is the largest sum over the tree without PostgreSQL; ``at_peak`` splits that sample
    into the CLI process, its yt-dlp children and its other children (the decoder process);
    ``pg_peak`` is the largest sum over the servers whose data dir lies under ``home``.
    """

    pid: int
    home: Path | None = None
    every: float = 0.2
    peak: int = 0
    pg_peak: int = 0
    at_peak: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TreeRss:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        servers: set[int] = set()
        tick = 0
        while not self._stop.wait(self.every):
            if self.home is not None and tick % 5 == 0:
                servers = _postmasters(self.home)
            tick += 1
            pg_pids = set(servers)
            for server in list(servers):
                pg_pids |= {c.pid for c in _children(server)}
            parts: Counter[str] = Counter()
            parts["cli"] = _rss(root)
            if not parts["cli"]:
                break
            for child in _children(self.pid):
                if child.pid in pg_pids or _is_postgres(child):
                    continue
                parts[_kind(child)] += _rss(child)
            pg = sum(_rss(p) for p in _processes(pg_pids))
            total = sum(parts.values())
            self.samples += 1
            self.pg_peak = max(self.pg_peak, pg)
            if total > self.peak:
                self.peak, self.at_peak = total, dict(parts)

    def row(self) -> dict[str, Any]:
        return {
            "peak_rss_mb": _mb(self.peak),
            "at_peak_mb": {k: _mb(v) for k, v in self.at_peak.items()},
            "postgres_peak_rss_mb": _mb(self.pg_peak),
            "samples": self.samples,
        }


def _mb(n: int) -> float:
    return round(n / 1e6, 1)


def _rss(proc: psutil.Process) -> int:
    try:
        return int(proc.memory_info().rss)
    except psutil.Error:
        return 0


def _children(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def _processes(pids: set[int]) -> list[psutil.Process]:
    out = []
    for pid in pids:
        try:
            out.append(psutil.Process(pid))
        except psutil.Error:
            pass
    return out


def _is_postgres(proc: psutil.Process) -> bool:
    try:
        return proc.name() in ("postgres", "pg_ctl", "initdb")
    except psutil.Error:
        return False


def _kind(proc: psutil.Process) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    return "ytdlp" if "yt_dlp" in cmd or "yt-dlp" in cmd else "children"


def _postmasters(home: Path) -> set[int]:
    """PostgreSQL servers whose data dir (``-D``) lies under ``home``."""
    found = set()
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and "-D" in cmd[:-1]:
            if Path(cmd[cmd.index("-D") + 1]).is_relative_to(home):
                found.add(proc.pid)
    return found


# ---- (a) the ceiling ----------------------------------------------------------------------------


def ceiling_in_this_process(path: Path) -> dict[str, Any]:
    """BatchedInferencePipeline on one file; the model load and a warm-up call are not timed."""
    import numpy as np
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from ytingest.models.asr import resolve_asr_model

    t0 = time.perf_counter()
    model = WhisperModel(resolve_asr_model("bundled"), device="cpu", compute_type="int8")
    pipe = BatchedInferencePipeline(model)
    load = time.perf_counter() - t0
    warm = np.zeros(16_000 * 5, dtype=np.float32)
    list(pipe.transcribe(warm, batch_size=BATCH_SIZE, beam_size=BEAM_SIZE, without_timestamps=False)[0])
    t0, cpu0 = time.perf_counter(), time.process_time()
    segments, info = pipe.transcribe(
        str(path),
        batch_size=BATCH_SIZE,
        beam_size=BEAM_SIZE,
        vad_filter=True,
        without_timestamps=False,
    )
    n = sum(1 for _ in segments)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 1),  # all its threads; steadier than wall on a busy machine
        "audio_s": round(info.duration, 1),
        "speech_s": round(info.duration_after_vad, 1),
        "audio_s_per_s": round(info.duration / wall, 2),
        "segments": n,
        "model_load_s": round(load, 2),
    }


def ceiling(ep: Episode) -> dict[str, Any]:
    """The ceiling for one file, in a fresh process (its own peak RSS)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.long_form", "--ceiling-file", str(ep.path)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
        with TreeRss(proc.pid) as rss:
            _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"ceiling run failed on {ep.path}: {err[-2000:]}")
        out.seek(0)
        row: dict[str, Any] = json.loads(out.read())
    row["peak_rss_mb"] = _mb(rss.peak)
    return row


# ---- (b), (c), (d): the CLI ---------------------------------------------------------------------


def cli_stream(
    feed_url: str,
    home: Path,
    *,
    timeout: float,
    extra: tuple[str, ...] = (),
    settings: dict[str, str] | None = None,
    stop_after: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``ytingest stream URL --json --log-format json`` in a subprocess with its own home, its tree's
    RSS sampled; returns the summary, wall time, RSS and the JSON log events. ``settings``: more
    environment; ``stop_after``: stop it (SIGINT, then another) once each of these events is logged."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(YTINGEST_HOME=str(home), PYTHONUNBUFFERED="1", **(settings or {}))
    cmd = [sys.executable, "-m", "ytingest", "stream", feed_url, "--json", "--log-format", "json", *extra]
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "stderr.jsonl"
    with log_path.open("w") as err, tempfile.TemporaryFile("w+") as out:
        t0, cpu0 = time.perf_counter(), _children_cpu()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
        with TreeRss(proc.pid, home) as rss:
            try:
                if stop_after:
                    _stop_once_logged(proc, log_path, stop_after, timeout)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=60)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        out.seek(0)
        stdout = out.read()
    events = []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    try:
        summary = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        summary = {"error": f"no JSON summary (exit {proc.returncode})", "stdout": stdout[-2000:]}
    problems = [e for e in events if e.get("level") in ("error", "critical")]
    return {
        "exit": proc.returncode,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 1),  # the CLI + decoder + yt-dlp (reaped children), startup included
        "summary": summary,
        **rss.row(),
        "errors": [
            f"{e.get('event')}: {e.get('error') or e.get('reason') or ''}"[:300] for e in problems[:5]
        ],
        "_events": events,
    }


def _stop_once_logged(
    proc: subprocess.Popen[str], log_path: Path, events: tuple[str, ...], timeout: float
) -> None:
    """SIGINT ``proc`` (then again: the second cancels) once every event in ``events`` is logged."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if all(f'"event": "{e}"' in text or f'"event":"{e}"' in text for e in events):
            proc.send_signal(signal.SIGINT)
            time.sleep(1.0)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            return
        time.sleep(0.2)


def first_window(events: list[dict[str, Any]]) -> dict[str, Any]:
    """From the JSON log: seconds from ``download_start`` to the first ``transcribe_start`` (the
    first window in the model) and to ``download_done``, and the download's own ``ms``."""

    def at(name: str) -> float | None:
        for e in events:
            if e.get("event") == name and e.get("timestamp"):
                return datetime.fromisoformat(str(e["timestamp"]).replace("Z", "+00:00")).timestamp()
        return None

    start, model, done = at("download_start"), at("transcribe_start"), at("download_done")
    ms = next((e.get("ms") for e in events if e.get("event") == "download_done"), None)
    row: dict[str, Any] = {
        "handed_to_decode": any(e.get("event") == "download_handed_to_decode" for e in events),
        "download_s": round(float(ms) / 1000, 2) if ms is not None else None,
        "first_window_s": round(model - start, 2) if model is not None and start is not None else None,
        "download_done_s": round(done - start, 2) if done is not None and start is not None else None,
    }
    if row["first_window_s"] is not None and row["download_s"]:
        row["first_window_vs_download"] = round(row["first_window_s"] / row["download_s"], 3)
    return row


def first_window_section(
    minutes: float, cache: Path, bandwidth: int | None, download_s: float, tmp: Path, timeout: float
) -> dict[str, Any]:
    """(e): the same throttled WebM episode, DECODE_WHILE_DOWNLOADING off then on (``bandwidth``,
    else one that downloads it in ``download_s``)."""
    ep = long_episode(minutes, cache, fmt="webm")
    bw = bandwidth or round(ep.path.stat().st_size / (download_s or DOWNLOAD_S))
    out: dict[str, Any] = {"episode": ep.id, "mb": _mb(ep.path.stat().st_size), "bandwidth_bytes_per_s": bw}
    for name, value in (("before", "false"), ("after", "true")):
        with serve_in_thread(ChannelServer([ep], bandwidth=bw)) as channel:
            run = cli_stream(
                channel.feed_url,
                tmp / f"first-window-{name}",
                timeout=timeout,
                settings={"DECODE_WHILE_DOWNLOADING": value},
                stop_after=("transcribe_start", "download_done"),
            )
        out[name] = {"decode_while_downloading": value, **first_window(run["_events"]), "exit": run["exit"]}
        print(f"  first window, {name}: {out[name]}", flush=True)
    return out


def _children_cpu() -> float:
    """CPU seconds of this process's reaped children and theirs (PostgreSQL, a daemon, is not)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def engine_row(run: dict[str, Any], episodes: list[Episode]) -> dict[str, Any]:
    s = run["summary"]
    audio = float(s.get("audio_seconds") or 0)
    row = {k: v for k, v in run.items() if not k.startswith("_")}
    row["episodes"] = len(episodes)
    row["done"], row["failed"] = s.get("done"), s.get("failed")
    row["engine_wall_s"] = s.get("wall_seconds")
    row["audio_s_per_s"] = round(audio / run["wall_s"], 2) if audio else None
    row["segments"] = s.get("segments")
    if s.get("done") != len(episodes) or s.get("failed"):
        print(f"  WARNING: {s.get('done')}/{len(episodes)} stored, failed {s.get('failed')}: {s}", flush=True)
    return row


def batch_files(events: list[dict[str, Any]]) -> dict[str, Any]:
    """``transcribe_start`` events carry ``batch_files`` (files in that model call), once per file."""
    values = [
        int(e["batch_files"]) for e in events if e.get("event") == "transcribe_start" and "batch_files" in e
    ]
    per_event = Counter(values)
    batches = {k: n / k for k, n in per_event.items()}  # a batch of k files logs k events
    n_batches = sum(batches.values())
    out: dict[str, Any] = {
        "events": len(values),
        "per_event": dict(sorted(per_event.items())),
        "batches_by_size": {k: round(v, 2) for k, v in sorted(batches.items())},
        "mean_files_per_batch": round(len(values) / n_batches, 2) if n_batches else None,
    }
    calls = [e for e in events if e.get("event") == "asr_batch"]  # one per model call, where logged
    if calls:
        out["asr_batch_events"] = len(calls)
        for key in ("files", "windows", "chunks"):
            got = [float(e[key]) for e in calls if isinstance(e.get(key), int | float)]
            if got:
                out[f"mean_{key}_per_call"] = round(sum(got) / len(got), 2)
    return out


def whole_file_bound(episodes: list[Episode], bandwidth: int, rate: float) -> float:
    """Best wall time for whole-file downloads, all at once at ``bandwidth`` each, then ASR at
    ``rate`` audio-s/s one file after another in the order they arrive."""
    t = 0.0
    for ep in sorted(episodes, key=lambda e: e.path.stat().st_size):
        t = max(t, ep.path.stat().st_size / bandwidth) + ep.duration / rate
    return t


# ---- the run ------------------------------------------------------------------------------------


def main(minutes: list[float], cache: Path, bandwidth: int | None, timeout: float) -> dict[str, Any]:
    result: dict[str, Any] = {
        "minutes": minutes,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "ceiling": {},
        "rss_by_length": {},
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],  # others' work skews wall times
    }
    made = {}
    episodes = []
    for m in minutes:
        t0 = time.perf_counter()
        episodes.append(long_episode(m, cache))
        made[f"{m:g}"] = round(time.perf_counter() - t0, 2)
    result["episodes"] = [
        {"id": e.id, "minutes": round(e.duration / 60, 2), "mb": _mb(e.path.stat().st_size)} for e in episodes
    ]
    result["make_episode_s"] = made  # ~0 when the file was in the cache
    print(f"episodes: {', '.join(f'{e.id} ({e.path.stat().st_size / 1e6:.1f} MB)' for e in episodes)}")
    print(f"  made in {made} s (0: cached in {cache})", flush=True)

    # (a)
    for ep in episodes:
        row = result["ceiling"][ep.id] = ceiling(ep)
        print(f"  ceiling {ep.id}: {row}", flush=True)
    c_wall = sum(r["wall_s"] for r in result["ceiling"].values())
    c_cpu = sum(r["cpu_s"] for r in result["ceiling"].values())
    c_audio = sum(e.duration for e in episodes)
    rate = c_audio / c_wall
    bytes_per_audio_s = sum(e.path.stat().st_size for e in episodes) / c_audio
    bw = bandwidth or round(bytes_per_audio_s * rate)
    result["ceiling_total"] = {"wall_s": round(c_wall, 2), "cpu_s": c_cpu, "audio_s_per_s": round(rate, 2)}
    result["bandwidth_bytes_per_s"] = bw
    result["bandwidth_rule"] = "given" if bandwidth else "bytes per audio-second x ceiling audio-s/s"

    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp:
        # (b)
        with serve_in_thread(ChannelServer(episodes, bandwidth=bw)) as channel:
            run = cli_stream(channel.feed_url, Path(tmp) / "e2e", timeout=timeout)
        result["e2e"] = engine_row(run, episodes)
        result["e2e"]["batch_files"] = batch_files(run["_events"])
        bound = whole_file_bound(episodes, bw, rate)
        result["e2e"]["whole_file_bound_s"] = round(bound, 1)
        print(f"  e2e: {result['e2e']}", flush=True)
        # (c)
        result["rss_by_length"] = rss_by_length(minutes, episodes, Path(tmp), timeout)
        # (d)
        with serve_in_thread(ChannelServer()) as channel:
            run = cli_stream(channel.feed_url, Path(tmp) / "short-clips", timeout=timeout)
        result["short_clips"] = engine_row(run, list(channel.episodes))
        result["short_clips"]["batch_files"] = batch_files(run["_events"])
        # (e)
        result["first_window"] = first_window_section(FIRST_WINDOW_MIN, cache, bw, 0.0, Path(tmp), timeout)
    e2e_wall = result["e2e"]["wall_s"]
    result["ratios"] = {
        "e2e_wall_vs_ceiling": round(e2e_wall / c_wall, 3),  # the CLI's wall: startup included
        "e2e_engine_wall_vs_ceiling": round(float(result["e2e"]["engine_wall_s"] or 0) / c_wall, 3),
        "bound_wall_vs_ceiling": round(bound / c_wall, 3),
        "e2e_cpu_vs_ceiling": round(result["e2e"]["cpu_s"] / c_cpu, 3),
        "e2e_wall_vs_bound": round(e2e_wall / bound, 3),
        **rss_ratios(result["rss_by_length"]),
    }
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def rss_by_length(
    minutes: list[float], episodes: list[Episode], tmp: Path, timeout: float
) -> dict[str, dict[str, Any]]:
    """(c): one unthrottled ``ytingest stream`` per episode, its tree's peak RSS."""
    rows = {}
    for m, ep in zip(minutes, episodes, strict=True):
        with serve_in_thread(ChannelServer([ep])) as channel:
            run = cli_stream(channel.feed_url, tmp / f"rss-{ep.id}", timeout=timeout)
        row = rows[f"{m:g}"] = engine_row(run, [ep])
        print(f"  rss {ep.id}: {row}", flush=True)
    return rows


def rss_ratios(rows: dict[str, dict[str, Any]]) -> dict[str, float]:
    peaks = {k: r["peak_rss_mb"] for k, r in rows.items()}
    base = min(peaks, key=float)
    return {f"peak_rss_{k}_vs_{base}": round(v / peaks[base], 3) for k, v in peaks.items() if k != base}


def one_section(
    name: str, minutes: list[float], cache: Path, bandwidth: int | None, download_s: float, timeout: float
) -> dict[str, Any]:
    """``--memory-only`` ((c) alone) or ``--first-window`` ((e) alone)."""
    result: dict[str, Any] = {
        "section": name,
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp:
        if name == "memory":
            episodes = [long_episode(m, cache) for m in minutes]
            result["rss_by_length"] = rss_by_length(minutes, episodes, Path(tmp), timeout)
            result["ratios"] = rss_ratios(result["rss_by_length"])
        else:
            result["first_window"] = first_window_section(
                minutes[0], cache, bandwidth, download_s, Path(tmp), timeout
            )
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def report_sections(r: dict[str, Any]) -> None:
    """What ``one_section`` measured (and (e) of a whole run)."""
    print(f"  load average at start {r.get('load_average_at_start')}, at end {r.get('load_average_at_end')}")
    for minutes, x in r.get("rss_by_length", {}).items():
        print(
            f"  ytingest 1 episode, {minutes} min: peak RSS {x['peak_rss_mb']:.0f} MB,"
            f" at peak {x['at_peak_mb']}"
        )
    fw = r.get("first_window")
    if fw:
        print(f"  first window, {fw['episode']} ({fw['mb']} MB) at {fw['bandwidth_bytes_per_s']} B/s:")
        for name in ("before", "after"):
            x = fw[name]
            print(
                f"    {name:6s} DECODE_WHILE_DOWNLOADING={x['decode_while_downloading']:5s} first window "
                f"{x['first_window_s']} s, download {x['download_s']} s, ratio "
                f"{x.get('first_window_vs_download')}  (target <= 0.1 after)"
            )
    for k, v in r.get("ratios", {}).items():
        if k.startswith("peak_rss"):
            print(f"  {k:30s} {v:.3f}  (target <= 1.2)")


def report(r: dict[str, Any]) -> None:
    print()
    print(f"long-form bench on {r['machine']}; per-connection bandwidth {r['bandwidth_bytes_per_s']} B/s")
    print(f"  ({r['bandwidth_rule']})")
    print(f"  load average at start {r.get('load_average_at_start')}, at end {r.get('load_average_at_end')}")
    head = ("", "minutes", "MB", "wall s", "CPU s", "audio-s/s", "segments", "peak RSS", "(pg)")
    line = "  {:24s} {:>8s} {:>6s} {:>8s} {:>7s} {:>10s} {:>9s} {:>10s} {:>8s}"
    print(line.format(*head))
    sizes = {e["id"]: e for e in r["episodes"]}
    for ep_id, c in r["ceiling"].items():
        e = sizes[ep_id]
        print(
            line.format(
                f"ceiling {ep_id}",
                f"{e['minutes']:g}",
                f"{e['mb']:.0f}",
                f"{c['wall_s']:.1f}",
                f"{c.get('cpu_s', 0):.0f}",
                f"{c['audio_s_per_s']:.1f}",
                str(c["segments"]),
                f"{c['peak_rss_mb']:.0f}MB",
                "",
            )
        )
    ct = r["ceiling_total"]
    print(
        line.format(
            "ceiling, all files",
            "",
            "",
            f"{ct['wall_s']:.1f}",
            f"{ct.get('cpu_s', 0):.0f}",
            f"{ct['audio_s_per_s']:.1f}",
            "",
            "",
            "",
        )
    )

    def cli_line(name: str, x: dict[str, Any], minutes: str = "") -> None:
        aps = "-" if x["audio_s_per_s"] is None else f"{x['audio_s_per_s']:.1f}"
        print(
            line.format(
                name,
                minutes,
                "",
                f"{x['wall_s']:.1f}",
                f"{x.get('cpu_s', 0):.0f}",
                aps,
                str(x["segments"]),
                f"{x['peak_rss_mb']:.0f}MB",
                f"{x['postgres_peak_rss_mb']:.0f}MB",
            )
            + f"  done {x['done']}/{x['episodes']}, engine {x['engine_wall_s']} s"
        )

    cli_line("ytingest e2e (throttled)", r["e2e"])
    print(f"  {'whole-file bound':24s} {'':>8s} {'':>6s} {r['e2e']['whole_file_bound_s']:8.1f}")
    for minutes, x in r["rss_by_length"].items():
        cli_line("ytingest 1 episode", x, minutes)
        print(f"  {'':26s} at peak: {x['at_peak_mb']}")
    cli_line("ytingest short clips", r["short_clips"])
    for name in ("short_clips", "e2e"):
        b = r[name]["batch_files"]
        calls = {
            k: v for k, v in b.items() if k.startswith(("asr_batch", "mean_")) and "files_per_b" not in k
        }
        print(
            f"  files per ASR batch ({name}): mean {b['mean_files_per_batch']}, "
            f"batches by size {b['batches_by_size']} ({b['events']} transcribe_start events)"
            + (f"; asr_batch events: {calls}" if calls else "")
        )
    for k, v in r["ratios"].items():
        print(f"  {k:30s} {v:.3f}" + ("  (target <= 1.2)" if k.startswith("peak_rss") else ""))
    if r.get("first_window"):
        report_sections({"first_window": r["first_window"]})
    for name in ("e2e", "short_clips", *[f"rss {k}" for k in r["rss_by_length"]]):
        x = r["rss_by_length"][name[4:]] if name.startswith("rss ") else r[name]
        if x["errors"] or x["exit"] not in (0,):
            print(f"  {name}: exit {x['exit']} {x['errors']}")


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.long_form")
    parser.add_argument("--minutes", default="15,60,180", help="episode lengths, comma-separated")
    parser.add_argument("--short", action="store_true", help="5 and 15 minutes (make bench)")
    parser.add_argument("--bandwidth", type=int, help="bytes/s per connection (default: from the ceiling)")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="where episodes are kept")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per CLI run")
    parser.add_argument("--ceiling-file", type=Path, help=argparse.SUPPRESS)  # the child of (a)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--memory-only", action="store_true", help="(c) alone: peak RSS per length")
    only.add_argument("--first-window", action="store_true", help="(e) alone: first window vs download")
    parser.add_argument(
        "--download-s", type=float, default=DOWNLOAD_S, help="(e) alone: the download's length"
    )
    args = parser.parse_args()
    if args.ceiling_file is not None:
        print(json.dumps(ceiling_in_this_process(args.ceiling_file)))
        return
    if args.memory_only or args.first_window:
        name = "memory" if args.memory_only else "first_window"
        chosen = [float(m) for m in args.minutes.split(",")] if args.memory_only else [FIRST_WINDOW_MIN]
        if args.first_window and args.minutes != parser.get_default("minutes"):
            chosen = [float(args.minutes.split(",")[0])]
        result = one_section(name, chosen, args.cache, args.bandwidth, args.download_s, args.timeout)
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"long_form_{name}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        report_sections(result)
        print(f"  wrote {out}")
        return
    minutes = [5.0, 15.0] if args.short else [float(m) for m in args.minutes.split(",")]
    result = main(minutes, args.cache, args.bandwidth, args.timeout)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("long_form_short.json" if args.short else "long_form.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    print(f"  wrote {out}")


if __name__ == "__main__":
    cli()
