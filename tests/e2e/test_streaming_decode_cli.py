"""Decode while downloading, end to end: real yt-dlp on the local channel, throttled, WebM/Opus.

A download cut halfway after decoding began is retried (yt-dlp resumes its .part) and the video is
stored whole; one that fails for good fails as any download does, with nothing of it stored."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli, cli_rows
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.long_episodes import default_cache_dir, long_episode

RETRIED, FAILED = "long-1min-webm", "long-2min-webm"


def test_decoding_starts_while_downloading_and_survives_a_retry(cli: Cli, tmp_path: Path) -> None:
    """The first window reaches the model before the download is done; a cut download resumes and
    the video's segments are contiguous and unduplicated; a download that keeps failing fails the
    video (exit 1), leaves no rows, no windows in flight and no file behind."""
    episodes = [
        long_episode(1, default_cache_dir(), fmt="webm"),
        long_episode(2, default_cache_dir(), fmt="webm"),
    ]
    # each request of these is cut halfway: the extraction's and the media's, per attempt
    cut = {RETRIED: 2, FAILED: 2 * 2}
    env = {"DECODE_WINDOW_S": "30", "IO_WORKERS": "1", "DOWNLOAD_ATTEMPTS": "2", "RETRY_BASE_S": "0.2"}
    with serve_in_thread(ChannelServer(episodes, bandwidth=60_000, cut=cut)) as ch:
        r = cli("stream", ch.feed_url, "--json", "--log-format", "json", extra_env=env, timeout=400)
    assert r.returncode == 1, r.stderr[-3000:]
    summary = r.json()
    assert (summary["done"], summary["failed"]) == (1, 1)
    events = r.events()

    def first(event: str, vid: str) -> int:
        return next(i for i, e in enumerate(events) if e.get("event") == event and e.get("video_id") == vid)

    # the retried video: handed to the decoder while its first attempt ran, decoded across the cut
    assert first("download_handed_to_decode", RETRIED) < first("download_retry", RETRIED)
    assert first("transcribe_start", RETRIED) < first("download_done", RETRIED)
    rows = cli_rows(cli, f"SELECT idx, start_s FROM segments WHERE video_id = '{RETRIED}' ORDER BY idx")
    assert [row["idx"] for row in rows] == list(range(len(rows))) and len(rows) > 5
    assert all(a["start_s"] <= b["start_s"] for a, b in zip(rows, rows[1:], strict=False))
    # the failed one: decoding had begun, then its windows were dropped and the failure recorded once
    assert first("decoded_while_downloading", FAILED) < first("decode_abandoned", FAILED)
    failed = [e for e in events if e.get("event") == "video_failed" and e.get("video_id") == FAILED]
    assert len(failed) == 1 and failed[0]["stage"] == "download"
    assert cli_rows(cli, f"SELECT count(*) AS n FROM segments WHERE video_id = '{FAILED}'") == [{"n": 0}]
    audio = cli.home / "audio"
    left = sorted(p.name for p in audio.iterdir()) if audio.is_dir() else []
    assert not [name for name in left if name.endswith(".end")], left  # no end marker left over
