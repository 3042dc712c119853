"""Speaker identification as a user runs it: `ytingest stream --voices-dir` on a dialogue channel.

Real yt-dlp, faster-whisper, the GE2E encoder and PostgreSQL; ground truth from the turn times
the dialogue episodes were generated with.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Cli, CliResult, make_cli
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.dialogues import UNENROLLED, VOICES_DIR, dialogue_episodes, dialogue_truth, score

pytestmark = pytest.mark.slow
ENROLLED = ("Ada Lovelace", "Bruno Diaz", "Chen Wei")


@dataclass
class Run:
    cli: Cli
    first: CliResult
    rows: dict[str, list[dict[str, object]]]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Both dialogue episodes ingested once with the sample voices enrolled."""
    home = tmp_path_factory.mktemp("speakers")
    voices = home / "voices"
    shutil.copytree(VOICES_DIR, voices)
    cli = make_cli(home / "home", None)
    with serve_in_thread(ChannelServer(episodes=dialogue_episodes())) as channel:
        first = cli("stream", channel.feed_url, "--voices-dir", str(voices), "--json", "--log-format", "json")
    rows = {ep.id: cli("export", ep.id).json() for ep in dialogue_episodes()}
    yield Run(cli, first, rows)


def test_stream_with_voices_enrols_and_stores_both_episodes(run: Run) -> None:
    """Exit 0, both episodes stored, the three voices enrolled (logged) from the folder and files."""
    assert run.first.returncode == 0, run.first.stderr[-2000:]
    assert run.first.json()["done"] == 2
    (enrolled,) = [e for e in run.first.events() if e["event"] == "voices_enrolled"]
    assert sorted(enrolled["computed"]) == list(ENROLLED) and enrolled["reused"] == []


def test_segments_are_attributed_to_the_right_enrolled_voice(run: Run) -> None:
    """≥ 90% of segments spoken by an enrolled voice carry that voice's name."""
    result = score(
        {ep: [(r["start"], r["end"], r["speaker"]) for r in rows] for ep, rows in run.rows.items()}
    )
    assert result.enrolled_total >= 10
    assert result.accuracy >= 0.9, result


def test_the_unenrolled_voice_is_one_unknown_label_across_episodes(run: Run) -> None:
    """The guest's segments are are unknown-N, never an enrolled name, one label in both episodes."""
    result = score(
        {ep: [(r["start"], r["end"], r["speaker"]) for r in rows] for ep, rows in run.rows.items()}
    )
    assert result.unknown_total >= 2
    assert result.unknown_accuracy >= 0.9, result
    assert len(result.unknown_labels) == 1
    assert UNENROLLED in {t.speaker for turns in dialogue_truth().values() for t in turns}


def test_every_segment_has_a_speaker_and_a_score(run: Run) -> None:
    """export shows speaker and speaker_score (cosine similarity) on every stored segment."""
    for rows in run.rows.values():
        assert rows and all(r["speaker"] for r in rows)
        assert all(isinstance(r["speaker_score"], float) and -1.0 <= r["speaker_score"] <= 1.0 for r in rows)


def test_search_by_speaker_returns_only_that_speaker(run: Run) -> None:
    """search --speaker NAME: every hit is NAME's, and NAME's own line about Saturdays comes first."""
    r = run.cli(
        "search", "fresh bread on Saturday mornings", "--speaker", "Chen Wei", "--limit", "20", "--json"
    )
    assert r.returncode == 0, r.stderr
    hits = r.json()
    assert hits and {h["speaker"] for h in hits} == {"Chen Wei"}
    assert "Saturday" in hits[0]["text"]
    other = run.cli("search", "fresh bread on Saturday mornings", "--speaker", "Bruno Diaz", "--json").json()
    assert other and all(h["speaker"] == "Bruno Diaz" for h in other)


def test_speakers_command_lists_voices_and_unknowns(run: Run) -> None:
    """`ytingest speakers --json`: three enrolled voices with segment counts, and the unknown guest."""
    report = run.cli("speakers", "--json").json()
    assert [p["name"] for p in report["enrolled"]] == list(ENROLLED)
    assert all(p["segments"] > 0 and p["videos"] == 2 for p in report["enrolled"])
    assert [p["clips"] for p in report["enrolled"]][0] == ["Ada Lovelace/clip1.mp3", "Ada Lovelace/clip2.mp3"]
    assert len(report["unknown"]) == 1 and report["unknown"][0]["label"].startswith("unknown-")
    human = run.cli("speakers").stdout
    assert "Chen Wei:" in human and "(not enrolled)" in human


def test_a_broken_clip_is_named_and_the_other_voices_still_enrol(run: Run, tmp_path: Path) -> None:
    """A clip that is not audio and a silent clip are reported by path; the good voices are reused."""
    voices = tmp_path / "voices"
    shutil.copytree(VOICES_DIR, voices)
    (voices / "Broken Bob.mp3").write_bytes(b"this is not audio" * 200)
    (voices / "Ada Lovelace" / "silence.wav").write_bytes(_silent_wav(2.0))
    with serve_in_thread(ChannelServer(episodes=dialogue_episodes())) as channel:
        r = run.cli("stream", channel.feed_url, "--voices-dir", str(voices), "--json", "--log-format", "json")
    assert r.returncode == 0, r.stderr[-2000:]
    failed = {e["file"]: e["reason"] for e in r.events() if e["event"] == "voice_clip_failed"}
    assert set(failed) == {"Broken Bob.mp3", "Ada Lovelace/silence.wav"}
    assert failed["Broken Bob.mp3"].startswith("cannot decode audio")
    assert failed["Ada Lovelace/silence.wav"] == "no speech found"
    (enrolled,) = [e for e in r.events() if e["event"] == "voices_enrolled"]
    assert sorted(enrolled["speakers"]) == list(ENROLLED)
    assert sorted(enrolled["reused"]) == ["Bruno Diaz", "Chen Wei"]  # unchanged files: not recomputed
    assert enrolled["computed"] == ["Ada Lovelace"]  # her folder changed


def _silent_wav(seconds: float, rate: int = 16_000) -> bytes:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
    return buf.getvalue()
