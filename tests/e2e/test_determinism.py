"""The transcript is a function of the audio: not of what shares its ASR batches, nor of the run.

One local channel: the bundled sample episodes with three copies of the real crosstalk clip ``tst00``
between them (30 s of a four-person AMI meeting: one speech chunk on which tiny.en's batched pass
stops early, so it is decoded again). Downloads run concurrently and model calls take the speech
chunks of several files (ASR_BATCHING=cross), so each copy meets the model in other company.
Real yt-dlp, tiny.en, embeddings and PostgreSQL; no speaker model: the claim is about the ASR.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.conftest import CliResult, cli_rows, database_on, make_cli
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import Episode, sample_episodes
from ytingest.testing.real_speech import real_speech_episodes

pytestmark = pytest.mark.slow
COPIES = ("tst00-a", "tst00-b", "tst00-c")  # one audio file, three videos
ROWS = "SELECT video_id, idx, start_s, end_s, text FROM segments ORDER BY video_id, idx"
Row = tuple[int, float, float, str]  # idx, start, end, text
# model calls of at most 2 speech chunks (ASR_BATCH_SIZE): the three copies cannot all share one call,
# whatever order the concurrent downloads finish in
STREAM = ("--json", "--log-format", "json", "--no-speakers", "--asr-batch-size", "2")


def episodes() -> list[Episode]:
    """The sample episodes, newest first, with a copy of tst00 first, third and before the last."""
    tst00 = next(e for e in real_speech_episodes(meeting_only=True) if e.id == "tst00")
    a, b, c = (replace(tst00, id=i, title=f"{tst00.title}, copy {i[-1]}") for i in COPIES)
    s = sample_episodes()
    return [a, s[0], s[1], b, s[2], s[3], s[4], c, s[5]]


@dataclass
class Run:
    result: CliResult
    rows: dict[str, list[Row]]  # video id → its stored rows, in idx order


def stream(channel: ChannelServer, pg_server: str, home: Path) -> Run:
    """``ytingest stream`` of the channel into a fresh home and database: its result and stored rows."""
    with database_on(pg_server, "ytingest_det") as dsn:
        cli = make_cli(home, dsn)
        r = cli("stream", channel.feed_url, *STREAM)
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.json()["done"] == len(channel.episodes), r.stdout
        rows: dict[str, list[Row]] = defaultdict(list)
        for row in cli_rows(cli, ROWS):
            rows[row["video_id"]].append((row["idx"], row["start_s"], row["end_s"], row["text"]))
    return Run(r, dict(rows))


def batches(r: CliResult) -> list[list[str]]:
    """The video ids of each model call, in order (an ``asr_batch`` event is followed at once by a
    ``transcribe_start`` event per video in that call)."""
    out: list[list[str]] = []
    for event in r.events():
        if event["event"] == "asr_batch":
            out.append([])
        elif event["event"] == "transcribe_start":
            out[-1].append(event["video_id"])
    return out


@dataclass
class Ingested:
    channel: ChannelServer
    pg_server: str
    first: Run


@pytest.fixture(scope="module")
def ingested(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:
    """The channel, served, and streamed once into a fresh home and database."""
    with serve_in_thread(ChannelServer(episodes=episodes())) as channel:
        first = stream(channel, pg_server, tmp_path_factory.mktemp("determinism") / "home")
        yield Ingested(channel, pg_server, first)


def test_same_audio_same_transcript_whatever_shares_its_batches(ingested: Ingested) -> None:
    """Three copies of one real crosstalk clip, batched in different company in one run, store the
    same rows (idx, start, end, text), and several of them."""
    calls = batches(ingested.first.result)
    company = [frozenset(call) for c in COPIES for call in calls if c in call]
    assert len(company) == len(COPIES), calls  # one window each, so one model call each
    assert len(set(company)) > 1, f"the copies shared one model call, so nothing was compared: {calls}"
    rows = ingested.first.rows
    for copy in COPIES[1:]:
        assert rows[copy] == rows[COPIES[0]], f"{copy} differs from {COPIES[0]}; model calls: {calls}"
    assert len(rows[COPIES[0]]) >= 5, rows[COPIES[0]]  # the clip's speech, not one stray line


def test_two_clean_runs_store_identical_rows(ingested: Ingested, tmp_path: Path) -> None:
    """The channel streamed again into a fresh home and database stores the same rows (video, idx,
    start, end, text) as the first run, each video's idx contiguous from 0."""
    second = stream(ingested.channel, ingested.pg_server, tmp_path / "home")
    for run in (ingested.first, second):
        assert set(run.rows) == {e.id for e in ingested.channel.episodes}, sorted(run.rows)
        for video, rows in run.rows.items():
            assert [idx for idx, *_ in rows] == list(range(len(rows))), video
    differ = sorted(v for v, rows in second.rows.items() if rows != ingested.first.rows[v])
    assert second.rows == ingested.first.rows, f"rows differ between the runs for {differ}"
