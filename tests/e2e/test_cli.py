"""``ytingest`` as a user runs it: real yt-dlp, ASR, embeddings and PostgreSQL on a local channel."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from tests.conftest import EXTERNAL_DSN, Cli, CliResult, cli_in
from tests.wer import MAX_EPISODE_WER, MAX_MEAN_WER, wer
from ytingest.testing import ChannelServer, serve_in_thread

pytestmark = pytest.mark.slow


@dataclass
class Ingested:
    cli: Cli
    channel: ChannelServer
    first: CliResult


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:
    """The whole sample channel ingested once through `ytingest stream --json`."""
    cli = cli_in(tmp_path_factory.mktemp("e2e") / "home")
    with serve_in_thread(ChannelServer(bandwidth=200_000)) as channel:
        first = cli("stream", channel.feed_url, "--json", "--log-format", "json")
        yield Ingested(cli, channel, first)


def test_stream_stores_every_episode(ingested: Ingested) -> None:
    """All six episodes are stored, exit code 0, and the summary follows the --json contract."""
    r = ingested.first
    assert r.returncode == 0, r.stderr[-2000:]
    summary = r.json()
    assert {k: summary[k] for k in ("done", "failed", "skipped")} == {"done": 6, "failed": 0, "skipped": 0}
    assert summary["segments"] > 20
    assert summary["audio_seconds"] == pytest.approx(
        sum(e.duration for e in ingested.channel.episodes), rel=0.02
    )
    assert summary["wall_seconds"] > 0


def test_stored_text_matches_the_scripts(ingested: Ingested) -> None:
    """Each exported transcript is within the WER threshold of the script it was spoken from."""
    rates = {}
    for ep in ingested.channel.episodes:
        r = ingested.cli("export", ep.id, "--format", "json")
        assert r.returncode == 0, r.stderr
        rows = r.json()
        assert all({"start", "end", "text", "speaker"} <= set(row) for row in rows)
        rates[ep.id] = wer(ep.text, " ".join(row["text"] for row in rows))
    assert max(rates.values()) <= MAX_EPISODE_WER, rates
    assert sum(rates.values()) / len(rates) <= MAX_MEAN_WER, rates


@pytest.mark.parametrize(
    ("query", "episode"),
    [
        ("an index finds the nearest neighbours so you can search by meaning", "ep01-vectors"),
        ("caffeine in the afternoon keeps you awake", "ep02-sleep"),
        ("plant tomatoes in full sun with compost", "ep03-garden"),
        ("the penny farthing had a huge front wheel", "ep04-bicycle"),
        ("magma rises and the volcano erupts", "ep05-volcano"),
        ("feed the sourdough starter with fresh flour", "ep06-bread"),
    ],
)
def test_search_finds_the_episode_a_phrase_comes_from(ingested: Ingested, query: str, episode: str) -> None:
    """A phrase from episode k returns episode k first, with a URL that opens it at that second."""
    r = ingested.cli("search", query, "--limit", "3", "--json")
    assert r.returncode == 0, r.stderr
    hits = r.json()
    assert hits[0]["video_id"] == episode
    assert set(hits[0]) == SEARCH_FIELDS
    assert hits[0]["url"].endswith(f"#t={int(hits[0]['start'])}")
    assert hits[0]["score"] >= hits[-1]["score"]


SEARCH_FIELDS = {"video_id", "idx", "title", "url", "media_url", "channel", "upload_date", "start", "end"}
SEARCH_FIELDS |= {"text", "before", "after", "speaker", "score", "language", "language_probability"}


def test_search_modes_filters_and_dates_from_the_feed(ingested: Ingested) -> None:
    """Keyword mode returns only segments with the word; upload dates come from the feed's pubDate
    (episode n is n days before 2026-01-01) and --since/--until select by them; context and grouping hold."""
    by_id = {ep.id: n for n, ep in enumerate(ingested.channel.episodes)}
    r = ingested.cli("search", "volcano magma", "--mode", "keyword", "--json")
    assert r.returncode == 0, r.stderr
    hits = r.json()
    assert hits and all({"volcano", "magma"} & set(h["text"].lower().replace(".", " ").split()) for h in hits)
    assert {h["video_id"] for h in hits} == {"ep05-volcano"}
    # --lang reaches the search: English (the rows' language) finds the same; German matches the rows
    # stored in German, and there are none
    english = ingested.cli("search", "volcano magma", "--mode", "keyword", "--lang", "en", "--json")
    assert english.returncode == 0 and english.json() == hits, english.stderr
    assert ingested.cli("search", "volcano magma", "--mode", "keyword", "--lang", "de", "--json").json() == []
    newest = date(2026, 1, 1)  # the channel server's first pubDate
    for h in hits:
        assert h["upload_date"] == (newest - timedelta(days=by_id[h["video_id"]])).isoformat()
        assert h["channel"] == ingested.channel.feed_url
    mid = ingested.channel.episodes[2].id  # 2 days old
    recent = ingested.cli("search", "episode", "--limit", "50", "--since", "2025-12-30", "--json").json()
    assert recent and {h["video_id"] for h in recent} <= {ep.id for ep in ingested.channel.episodes[:3]}
    old = ingested.cli("search", "episode", "--limit", "50", "--until", "2025-12-29", "--json").json()
    assert old and mid not in {h["video_id"] for h in old}
    one = ingested.cli("search", "bread", "--video", "ep06-bread", "--limit", "3", "--json").json()
    assert {h["video_id"] for h in one} == {"ep06-bread"}
    assert one[0]["before"] or one[0]["after"]  # a segment in the middle of a long episode has neighbours
    grouped = ingested.cli("search", "sun and water", "--group", "--limit", "8")
    assert grouped.returncode == 0 and "(ep03-garden)" in grouped.stdout


def test_bad_search_options_are_one_line_usage_errors(ingested: Ingested) -> None:
    for args in (
        ["--since", "yesterday"],
        ["--mode", "fuzzy"],
        ["--since", "2026-02-01", "--until", "2026-01-01"],
        ["--lang", "klingon"],
    ):
        r = ingested.cli("search", "bread", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.strip(), args


def test_rerun_downloads_nothing_and_stores_nothing_new(ingested: Ingested) -> None:
    """The same command again skips every video: no audio request, same segment count."""
    before = ingested.cli("status", "--json").json()
    hits_before = sum(ingested.channel.hits.values())
    r = ingested.cli("stream", ingested.channel.feed_url, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert {k: r.json()[k] for k in ("done", "failed", "skipped", "segments")} == {
        "done": 0,
        "failed": 0,
        "skipped": 6,
        "segments": 0,
    }
    assert sum(ingested.channel.hits.values()) == hits_before
    assert ingested.cli("status", "--json").json() == before


def test_status_json_contract(ingested: Ingested) -> None:
    """status --json reports done/failed/pending, the segment total and failures."""
    report = ingested.cli("status", "--json").json()
    assert report["videos"] == {"done": 6, "failed": 0, "pending": 0}
    assert report["segments"] == ingested.first.json()["segments"]
    assert report["failures"] == []


def test_export_srt_and_vtt(ingested: Ingested) -> None:
    """SRT and WebVTT exports have one cue per stored segment."""
    n = len(ingested.cli("export", "ep05-volcano").json())
    srt = ingested.cli("export", "ep05-volcano", "--format", "srt").stdout
    vtt = ingested.cli("export", "ep05-volcano", "--format", "vtt").stdout
    assert srt.count(" --> ") == n and srt.startswith("1\n00:00:")
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == n
    missing = ingested.cli("export", "no-such-video")
    assert missing.returncode == 2 and "not stored" in missing.stderr


def test_logs_are_one_json_event_per_line_with_video_ids(ingested: Ingested) -> None:
    """stderr is JSON lines; every stage transition of every video is logged with its video_id."""
    events = ingested.first.events()
    for name in (
        "video_queued",
        "download_start",
        "download_done",
        "transcribe_start",
        "transcribe_done",
        "video_stored",
    ):
        ids = {e["video_id"] for e in events if e["event"] == name}
        assert ids == {ep.id for ep in ingested.channel.episodes}, name


def test_a_404_episode_fails_with_its_reason_and_the_rest_are_stored(cli: Cli) -> None:
    """One episode answers 404: it is failed with the reason, the others stored, exit code 1."""
    with serve_in_thread(ChannelServer(fail={"ep02-sleep": 404})) as channel:
        r = cli("stream", channel.feed_url, "--limit", "4", "--json")
    assert r.returncode == 1, r.stderr[-2000:]
    summary = r.json()
    assert (summary["done"], summary["failed"]) == (3, 1)
    assert summary["failures"][0]["video_id"] == "ep02-sleep"
    report = cli("status", "--json").json()
    assert report["videos"] == {"done": 3, "failed": 1, "pending": 0}
    (failure,) = report["failures"]
    assert failure["video_id"] == "ep02-sleep" and "404" in failure["reason"] and failure["attempts"] == 1
    human = cli("status")
    assert "ep02-sleep" in human.stdout and "404" in human.stdout


def test_skip_shorts_only_takes_videos_of_a_minute_or_more(cli: Cli) -> None:
    """--skip-shorts: the five sub-minute episodes are skipped before any download."""
    with serve_in_thread(ChannelServer()) as channel:
        r = cli("stream", channel.feed_url, "--skip-shorts", "--json")
        assert r.returncode == 0, r.stderr[-2000:]
        assert (r.json()["done"], r.json()["skipped"]) == (1, 5)
        assert set(channel.hits) == {"ep06-bread"}


def _one_clean_line(r: CliResult) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("ytingest: error:")]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.mark.parametrize("url", ["not a url", "http://127.0.0.1:1/feed.xml"])
def test_bad_channel_url_exits_2_with_one_line(cli: Cli, url: str) -> None:
    """An unusable URL is a usage error: exit 2, one line on stderr, no traceback."""
    r = cli("stream", url)
    assert r.returncode == 2
    assert "cannot list" in _one_clean_line(r)


def test_unreachable_database_exits_2_without_leaking_the_password(cli: Cli) -> None:
    """DATABASE_URL pointing nowhere: exit 2, one line naming the host, password never printed."""
    r = cli("status", extra_env={"DATABASE_URL": "postgresql://bob:hunter2@127.0.0.1:1/ytingest"})
    assert r.returncode == 2
    line = _one_clean_line(r)
    assert "127.0.0.1/ytingest" in line
    assert "hunter2" not in r.stderr + r.stdout


def test_unknown_model_exits_2(cli: Cli) -> None:
    """An ASR model that cannot be found is a configuration error, reported in one line."""
    with serve_in_thread(ChannelServer()) as channel:
        r = cli("stream", channel.feed_url, "--asr-model", "/nonexistent/model")
    assert r.returncode == 2
    assert "ASR model" in _one_clean_line(r)
    assert sum(channel.hits.values()) == 0  # nothing downloaded before the model was known to load


def test_a_language_an_english_only_model_cannot_transcribe_exits_2(cli: Cli) -> None:
    """ASR_LANGUAGE=de with the bundled tiny.en: one line naming the conflict, nothing downloaded."""
    with serve_in_thread(ChannelServer()) as channel:
        r = cli("stream", channel.feed_url, extra_env={"ASR_LANGUAGE": "de"})
    assert r.returncode == 2
    assert "English-only" in _one_clean_line(r) and "ASR_LANGUAGE=de" in _one_clean_line(r)
    assert sum(channel.hits.values()) == 0


def test_the_language_is_stored_per_video(ingested: Ingested) -> None:
    """tiny.en transcribes in English and detects nothing: language en, probability null."""
    rows = ingested.cli("export", ingested.channel.episodes[0].id, "--format", "json").json()
    assert {(r["language"], r["language_probability"]) for r in rows} == {("en", None)}
    hits = ingested.cli("search", "sourdough starter", "--json", "--limit", "1").json()
    assert hits[0]["language"] == "en"


def test_json_summary_is_the_only_stdout(cli: Cli) -> None:
    """With --json, stdout is exactly one JSON object (logs go to stderr)."""
    with serve_in_thread(ChannelServer()) as channel:
        r = cli("stream", channel.feed_url, "--limit", "1", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(r.stdout.strip().splitlines()) == 1
    assert json.loads(r.stdout)["done"] == 1
    assert os.path.isdir(cli.home / "pg") or EXTERNAL_DSN  # embedded PostgreSQL lives in the home
