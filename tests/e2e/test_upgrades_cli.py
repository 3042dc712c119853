"""``ytingest reprocess`` and ``ytingest delete`` on a stored channel: real yt-dlp, ASR, two real
embedding models and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Cli, cli_in, cli_rows
from ytingest.testing import ChannelServer, serve_in_thread

pytestmark = pytest.mark.slow

MINILM, MEANMAX = "all-MiniLM-L6-v2 (bundled)", "all-MiniLM-L6-v2 mean+max (bundled)"
NO_SPEAKERS = {"SPEAKERS": "false"}  # voices are not what these tests are about
SEGMENTS = (
    "SELECT video_id, idx, text, embed_model, vector_dims(embedding) AS dim FROM segments ORDER BY 1, 2"
)


@dataclass
class Stored:
    cli: Cli
    url: str
    ids: list[str]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    """The channel's two newest episodes stored with the default embedder, their audio kept."""
    cli = cli_in(tmp_path_factory.mktemp("upg") / "home")
    with serve_in_thread(ChannelServer()) as channel:
        r = cli("stream", channel.feed_url, "--limit", "2", "--keep-audio", "--json", extra_env=NO_SPEAKERS)
        assert r.returncode == 0, r.stderr[-2000:]
        yield Stored(cli, channel.feed_url, [e.id for e in channel.episodes[:2]])


def test_reembedding_a_channel_replaces_its_vectors_without_asr(stored: Stored) -> None:
    """``reprocess --channel --embed-model``: every segment keeps its text and gets the new model's
    768-d vector, the old model is gone, no ASR runs (the log shows it), and a search with the new
    model finds the episode a phrase comes from, while one with the old model is told to reprocess."""
    before = cli_rows(stored.cli, SEGMENTS)
    assert {r["embed_model"] for r in before} == {MINILM} and {r["dim"] for r in before} == {384}
    r = stored.cli(
        "reprocess",
        "--channel",
        stored.url,
        "--embed-model",
        "bundled-meanmax",
        "--json",
        "--log-format",
        "json",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert (r.json()["done"], r.json()["failed"], r.json()["models_dropped"]) == (2, 0, [MINILM])
    events = r.events()
    names = [e["event"] for e in events]
    started = next(e for e in events if e["event"] == "reprocess_started")
    assert (started["mode"], started["asr"]) == ("re-embed", "none")
    assert sorted(e["video_id"] for e in events if e["event"] == "video_reembedded") == sorted(stored.ids)
    assert not [n for n in names if n.startswith(("transcribe", "asr", "download", "decode"))], names
    after = cli_rows(stored.cli, SEGMENTS)
    assert [(a["video_id"], a["idx"], a["text"]) for a in after] == [
        (b["video_id"], b["idx"], b["text"]) for b in before
    ]
    assert {(a["embed_model"], a["dim"]) for a in after} == {(MEANMAX, 768)}
    assert [r["name"] for r in cli_rows(stored.cli, "SELECT name FROM embed_models")] == [MEANMAX]
    query = "an index finds the nearest neighbours so you can search by meaning"
    found = stored.cli("search", query, "--embed-model", "bundled-meanmax", "--mode", "semantic", "--json")
    assert found.returncode == 0, found.stderr
    assert found.json()[0]["video_id"] == "ep01-vectors"
    old = stored.cli("search", "caffeine keeps you awake", "--mode", "semantic")
    assert old.returncode == 2 and "reprocess" in old.stderr and "Traceback" not in old.stderr
    status = stored.cli("status", "--json").json()
    assert [(m["embed_model"], m["dim"], sorted(m["video_ids"])) for m in status["models"]] == [
        (MEANMAX, 768, sorted(stored.ids))
    ]


def test_retranscribing_a_video_uses_its_kept_audio_and_replaces_its_rows(stored: Stored) -> None:
    """``reprocess --video --asr-model``: the kept audio is transcribed again (no download), the
    video's rows are replaced whole (numbered 0..n-1, none twice) under the models asked for, and
    the other video is left as it was; ``delete`` then removes a video, its rows and its audio."""
    target, other = stored.ids[1], stored.ids[0]
    others_before = [r for r in cli_rows(stored.cli, SEGMENTS) if r["video_id"] == other]
    r = stored.cli(
        "reprocess", "--video", target, "--asr-model", "bundled", "--embed-model", "bundled",
        "--keep-audio", "--json", "--log-format", "json", extra_env=NO_SPEAKERS,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert (r.json()["done"], r.json()["kept_audio"]) == (1, 1)
    names = [e["event"] for e in r.events()]
    assert "download_reused" in names and "transcribe_start" in names
    rows = cli_rows(stored.cli, SEGMENTS)
    mine = [r for r in rows if r["video_id"] == target]
    assert [r["idx"] for r in mine] == list(range(len(mine))) and mine
    assert {(r["embed_model"], r["dim"]) for r in mine} == {(MINILM, 384)}
    assert [r for r in rows if r["video_id"] == other] == others_before
    video = cli_rows(stored.cli, f"SELECT status, asr_model, segments FROM videos WHERE id = '{target}'")
    assert video[0]["status"] == "done" and video[0]["segments"] == len(mine)

    audio = Path(stored.cli.home) / "audio"
    assert {f.name.split(".")[0] for f in audio.iterdir()} == {target, other}  # KEEP_AUDIO: both kept
    gone = stored.cli("delete", "--video", other, "--json")
    assert gone.returncode == 0, gone.stderr
    assert gone.json()["videos"] == [other] and gone.json()["segments"] == len(others_before)
    assert not any(f.name.startswith(f"{other}.") for f in audio.iterdir())
    assert {r["video_id"] for r in cli_rows(stored.cli, SEGMENTS)} == {target}
    assert cli_rows(stored.cli, f"SELECT id FROM videos WHERE id = '{other}'") == []
    again = stored.cli("delete", "--video", other)
    assert again.returncode == 2 and "nothing stored matches" in again.stderr
