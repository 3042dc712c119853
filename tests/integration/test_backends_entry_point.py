"""Backends by name: a backend installed by another package (an entry point in the
``ytingest.backends`` group) runs the real pipeline with no edit to ytingest, and bad choices are
one-line ConfigErrors that name the choices."""

from __future__ import annotations

import textwrap
from pathlib import Path

import asyncpg
import pytest

from ytingest import Engine, Settings
from ytingest.backends import GROUP, available, build, factory
from ytingest.errors import ConfigError
from ytingest.testing import ChannelServer, sample_episodes

# a third party's package: a module with a factory, and its dist-info naming the entry point
ECHO_BACKEND = '''
"""An ASR backend from outside ytingest: it hears the length of the audio, nothing more."""
from faster_whisper import decode_audio

from ytingest.items import Segment
from ytingest.ports import AsrResult


class EchoTranscriber:
    name = "echo-asr"

    def __init__(self, words: str) -> None:
        self.words = words

    def transcribe(self, path):
        audio = decode_audio(str(path), sampling_rate=16000)
        seconds = len(audio) / 16000
        text = f"{self.words} {round(seconds)} seconds"
        return AsrResult((Segment(0, 0.0, seconds, text),), seconds, "en", audio)


def from_settings(settings):
    return EchoTranscriber(settings.asr_model)


def not_a_transcriber(settings):
    return object()
'''


@pytest.fixture
def echo_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``ytingest-echo`` installed on sys.path: ``asr.echo`` and a broken ``asr.hollow``."""
    root = tmp_path / "site"
    (root / "ytingest_echo-1.0.dist-info").mkdir(parents=True)
    (root / "ytingest_echo.py").write_text(ECHO_BACKEND)
    (root / "ytingest_echo-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ytingest-echo\nVersion: 1.0\n"
    )
    (root / "ytingest_echo-1.0.dist-info" / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
            [{GROUP}]
            asr.echo = ytingest_echo:from_settings
            asr.hollow = ytingest_echo:not_a_transcriber
            asr.missing = ytingest_echo_not_installed:from_settings
            asr.faster-whisper = ytingest_echo:from_settings
            """)
    )
    monkeypatch.syspath_prepend(str(root))
    return root


def test_the_built_in_backends_are_listed_and_load_lazily() -> None:
    assert set(available("asr")) >= {"faster-whisper"}
    assert set(available("speaker")) >= {"resemblyzer", "pyannote"}
    assert set(available("embed")) >= {"sentence-transformers"}
    assert factory("asr", "faster-whisper").__qualname__ == "WhisperTranscriber.from_settings"


def test_an_unknown_backend_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown ASR_BACKEND 'parakeet': choose from faster-whisper") as e:
        build("asr", Settings(ytingest_home=tmp_path, asr_backend="parakeet"))
    assert "\n" not in str(e.value) and "ytingest.backends" in str(e.value)
    with pytest.raises(ConfigError, match="unknown SPEAKER_BACKEND 'nemo'"):
        build("speaker", Settings(ytingest_home=tmp_path, speaker_backend="nemo"))


def test_entry_points_add_backends_and_bad_ones_are_config_errors(echo_package: Path, tmp_path: Path) -> None:
    assert {"echo", "hollow", "missing"} <= set(available("asr"))
    assert "echo" not in available("embed")  # each kind has its own names
    # a third party's name cannot shadow a built-in one
    assert available("asr")["faster-whisper"].value == "ytingest.models.asr:WhisperTranscriber.from_settings"
    s = Settings(ytingest_home=tmp_path, asr_model="heard", asr_backend="echo")
    assert build("asr", s).name == "echo-asr"
    with pytest.raises(ConfigError, match="ASR_BACKEND=hollow built a object, not a Transcriber"):
        build("asr", s, "hollow")
    with pytest.raises(ConfigError, match="ASR_BACKEND=missing cannot be imported: No module named"):
        build("asr", s, "missing")


@pytest.mark.slow
async def test_a_backend_from_an_entry_point_runs_the_pipeline(
    echo_package: Path, tmp_path: Path, fresh_dsn: str, conn: asyncpg.Connection
) -> None:
    """ASR_BACKEND=echo: the engine builds it by name (no edit to ytingest), decodes nothing for it
    (it reads its files itself), and stores its rows under its name with real embeddings."""
    episodes = sample_episodes()[:2]
    async with ChannelServer(episodes) as channel:
        cfg = Settings(
            ytingest_home=tmp_path,
            database_url=fresh_dsn,
            asr_backend="echo",
            asr_model="the echo heard",
            speakers=False,
            batch_max_age_s=0.2,
        )
        async with Engine(cfg) as engine:
            summary = await engine.stream(channel.feed_url)
            hits = await engine.search("echo heard seconds", mode="keyword")
    assert (summary.done, summary.failed) == (2, 0)
    rows = await conn.fetch(
        "SELECT s.video_id, s.text, v.asr_model FROM segments s JOIN videos v ON v.id = s.video_id ORDER BY 1"
    )
    assert [r["video_id"] for r in rows] == sorted(e.id for e in episodes)
    for r in rows:
        assert r["text"].startswith("the echo heard ") and r["text"].endswith(" seconds")
        assert r["asr_model"] == "echo-asr"
    assert {h.video_id for h in hits} == {e.id for e in episodes}
