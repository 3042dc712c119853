"""All knobs in one place: ``Settings`` reads the environment and ``.env`` once (in the CLI)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TABS = ("videos", "streams", "shorts")  # the channel tabs ``--tabs`` may name (yt-dlp's tab ids)


def _default_decode_workers() -> int:
    """One core is left to the event loop and the model's host work: ``min(4, cores - 1)``, at least 1."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("ytingest"))


def tab_names(spec: str | Iterable[str]) -> tuple[str, ...]:
    """``"videos,streams"`` (or a sequence of names) as a tuple in the given order, without
    repeats; a ValueError names an unknown tab or an empty list."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    tabs: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        if name not in TABS:
            raise ValueError(f"unknown tab {raw.strip()!r} in --tabs/TABS: use {', '.join(TABS)}")
        if name not in tabs:
            tabs.append(name)
    if not tabs:
        raise ValueError(f"--tabs/TABS names no tab: use one or more of {', '.join(TABS)}")
    return tuple(tabs)


class Settings(BaseSettings):
    """Engine configuration. Environment names are the field names upper-cased."""

    # an empty variable (YTINGEST_HOME=) counts as unset, not as "" (which would be the current folder)
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore", frozen=True
    )

    # where things live
    ytingest_home: Path = Field(default_factory=_default_home)
    database_url: SecretStr | None = None
    keep_audio: bool = False

    # concurrency and batching
    io_workers: int = Field(12, ge=1, le=256)
    asr_workers: int = Field(1, ge=1, le=64)
    batch_size: int = Field(768, ge=1, le=65536)  # rows per embedding micro-batch, across videos
    encode_batch_size: int = Field(768, ge=1, le=65536)  # rows per model forward pass (VRAM-bound)
    batch_max_age_s: float = Field(2.0, gt=0)
    db_workers: int = Field(2, ge=1, le=64)
    # decoder processes for VAD + features (windows of one video spread across them): cores - 1, at most 4
    decode_workers: int = Field(default_factory=lambda: _default_decode_workers(), ge=1, le=64)
    speaker_workers: int = Field(1, ge=1, le=64)  # speaker ID calls at once (the speakers stage)

    # bounded queues between stages: <STAGE>_QUEUE_SIZE is the queue that feeds that stage
    io_queue_size: int = Field(64, ge=1)  # videos listed, waiting for a download slot
    decode_queue_size: int = Field(4, ge=1)  # downloaded files waiting for the decoder
    asr_queue_size: int = Field(2, ge=1)  # model batches of speech chunks decoded ahead of the model
    speaker_queue_size: int = Field(4, ge=1)  # transcribed windows (with their audio) awaiting speaker ID
    embed_queue_size: int = Field(8, ge=1)
    db_queue_size: int = Field(8, ge=1)

    # models: each backend is chosen by name (ytingest/backends.py; third parties register theirs
    # under the "ytingest.backends" entry-point group), each model by the backend's own name for it
    asr_backend: str = "faster-whisper"
    embed_backend: str = "sentence-transformers"
    asr_model: str = "bundled"
    asr_device: Literal["auto", "cpu", "cuda"] = "auto"
    asr_compute_type: str = "auto"
    asr_cpu_threads: int = Field(0, ge=0)
    asr_beam_size: int = Field(1, ge=1)
    asr_language: str | None = None  # None: detect per video (multilingual models), "en" for .en models
    embed_model: str = "bundled"
    embed_device: Literal["auto", "cpu", "cuda"] = "auto"

    # monitoring, diagnosis, autotune
    monitor_interval_s: float = Field(1.0, gt=0)
    diagnose_window_s: float = Field(5.0, gt=0)
    stats_interval_s: float = Field(10.0, gt=0)
    autotune: bool | None = None  # None: on unless IO_WORKERS was set by the user
    io_workers_max: int = Field(64, ge=1, le=256)
    metrics_port: int | None = Field(None, ge=0, le=65535)  # None: no HTTP endpoint
    metrics_host: str = "127.0.0.1"

    # speakers: on by default (--no-speakers); enrolled voices from voices_dir (and `speakers name`),
    # every other voice a per-channel unknown-N. Thresholds chosen on real speech: bench/speakers.py
    speakers: bool = True
    voices_dir: Path | None = None
    speaker_backend: str = "resemblyzer"  # or "pyannote", or a registered one (ytingest/backends.py)
    # segmentation: pyannote's segmentation-3.0 (ONNX) finds local speakers and overlap in 10 s chunks
    # every SPEAKER_SEGMENTATION_STEP_S, the encoder tells them apart; windows: the encoder alone
    # over short windows of the ASR's speech (the default until segmentation beats it on stored
    # rows and on the enrolled real meeting). docs/SPEAKERS.md, bench/speakers.py
    speaker_diarization: Literal["segmentation", "windows"] = "windows"
    speaker_segmentation_step_s: float = Field(1.0, ge=0.25, le=9.0)
    speaker_device: Literal["auto", "cpu", "cuda"] = "auto"
    speaker_split: bool = True  # split a segment where the speaker changes (needs word timestamps)
    speaker_threshold: float = Field(0.80, ge=-1.0, le=1.0)  # a window's cosine to claim an enrolled voice
    speaker_margin: float = Field(0.05, ge=0.0, le=2.0)  # ... and by this much over the next voice
    speaker_cluster_distance: float = Field(0.30, gt=0.0, le=2.0)
    speaker_same_voice: float = Field(0.80, ge=-1.0, le=1.0)  # an anonymous voice = a channel's unknown-N
    pyannote_model: str | None = None  # hub id or local folder; HF_TOKEN is read by pyannote

    # reliability: retries, the shared 429 pause, the disk budget, database outages
    download_attempts: int = Field(4, ge=1, le=50)
    retry_base_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(60.0, gt=0)
    rate_limit_base_s: float = Field(5.0, gt=0)  # pause after a 429 without Retry-After (doubles)
    rate_limit_max_s: float = Field(3600.0, gt=0)  # yt-dlp: "rate-limited by YouTube for up to an hour"
    bot_check_limit: int = Field(3, ge=1, le=100)  # bot checks/captchas in a row, pauses between: run stops
    max_audio_bytes: int = Field(2 * 2**30, ge=1)
    min_free_bytes: int = Field(512 * 2**20, ge=0)
    db_retry_s: float = Field(60.0, ge=0)  # keep retrying a lost database connection this long

    # performance: run mode, ASR batching, decode prefetch (defaults measured by bench/run.py)
    mode: Literal["stream", "bulk"] = "stream"  # bulk: download all (within the budget), ASR all, store all
    asr_batching: Literal["off", "file", "cross"] = "cross"  # off: WhisperModel.transcribe per file
    asr_batch_size: int = Field(8, ge=1, le=256)  # speech chunks per model call (cross: files per call too)
    decode_process: bool = True  # decode in child processes (PyAV holds the GIL); False: a thread
    # auto: ASR, embedding and speaker ID take turns only where the ASR runs on the CPU (shared cores)
    model_turns: Literal["auto", "on", "off"] = "auto"
    decode_window_s: float = Field(300.0, ge=30.0, le=7200.0)  # a long video is decoded this much at a time
    # decode a WebM or fragmented/fast-start MP4 download while yt-dlp writes it (docs/STREAMING_DECODE.md)
    decode_while_downloading: bool = True
    model_stall_s: float = Field(900.0, gt=0)  # no model progress this long is reported (> a window's ASR)
    bulk_disk_budget_mb: int = Field(2048, ge=1)  # bulk mode: audio downloaded per wave

    # tools
    loop: Literal["auto", "uvloop", "asyncio"] = "auto"  # auto: uvloop where installed
    ytdlp_path: str | None = None  # None: the yt-dlp installed with ytingest (python -m yt_dlp)
    download_timeout_s: float = Field(1800.0, gt=0)
    cookies_file: Path | None = Field(None, repr=False)  # passed to yt-dlp; never logged
    cookies_from_browser: str | None = Field(None, repr=False)  # BROWSER[:PROFILE], as yt-dlp takes it
    ytdlp_args: str = Field("", repr=False)  # extra yt-dlp options, split like a shell would (no shell)
    js_runtime: str | None = None  # RUNTIME[:PATH] for yt-dlp; None: the deno installed with ytingest
    # yt-dlp plugins (stages/ytdlp_plugins.py): folders of plugin packages, as yt-dlp's --plugin-dirs
    # (os.pathsep-separated); the user's own yt-dlp plugin folders only when opted in
    ytdlp_plugin_dirs: Annotated[tuple[Path, ...], NoDecode] = ()
    ytdlp_user_plugins: bool = False
    po_token_remote_ok: bool = False  # a youtubepot-*:base_url may be another host (it gets the proxy)
    tabs: str = "videos,streams"  # which tabs of a bare channel URL are listed, in this order
    new_only_streak: int = Field(10, ge=1)  # --new-only: stop listing after this many stored in a row

    # the cluster (`ytingest worker`): many workers share one database's job queue (docs/SCALING.md)
    worker_name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # set by --name
    worker_claims: int = Field(8, ge=2, le=1024)  # the most videos a worker holds (adaptive: SCALING.md)
    worker_lease_s: float = Field(60.0, ge=2.0)  # a claim whose heartbeat is older goes to another worker
    worker_max_deaths: int = Field(3, ge=1, le=100)  # workers that may die holding a video before it fails
    download_concurrency_global: int = Field(0, ge=0)  # downloads at once across all workers (0: no cap)
    # download starts per hour (listings count too): across all workers of a cluster (unset: none), or
    # of one `stream` (unset: 250 on YouTube, 1500 with cookies, none elsewhere; pipeline/budget.py); 0: none
    download_rate_global: float | None = Field(None, ge=0.0)

    @field_validator("tabs", mode="after")
    @classmethod
    def _known_tabs(cls, value: str) -> str:
        """Checked when the settings are read, so a typo stops the run before any model loads."""
        return ",".join(tab_names(value))

    @field_validator("ytdlp_plugin_dirs", mode="before")
    @classmethod
    def _split_plugin_dirs(cls, value: object) -> object:
        """``YTDLP_PLUGIN_DIRS=/a:/b`` (``;`` on Windows), like PATH."""
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    @field_validator("ytdlp_plugin_dirs", mode="after")
    @classmethod
    def _existing_plugin_dirs(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        """Each folder must exist: yt-dlp stops with a traceback on a missing one."""
        for folder in value:
            if not folder.expanduser().is_dir():
                raise ValueError(f"YTDLP_PLUGIN_DIRS: {folder} is not a folder")
        return tuple(folder.expanduser().resolve() for folder in value)

    @field_validator("ytingest_home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def ytdlp_command(self) -> tuple[str, ...]:
        return (self.ytdlp_path,) if self.ytdlp_path else (sys.executable, "-m", "yt_dlp")

    @property
    def autotune_enabled(self) -> bool:
        """Explicit AUTOTUNE wins; otherwise tune unless the user pinned IO_WORKERS."""
        if self.autotune is not None:
            return self.autotune
        return "io_workers" not in self.model_fields_set

    @property
    def audio_dir(self) -> Path:
        """Downloads in progress; a worker has its own folder, so its leftover cleanup is its own."""
        if self.worker_name is not None:
            return self.ytingest_home / "workers" / self.worker_name / "audio"
        return self.ytingest_home / "audio"

    @property
    def kept_dir(self) -> Path:
        """Audio of videos the model failed on, kept for the retry (not counted in the disk budget)."""
        return self.ytingest_home / "kept"

    @property
    def pg_dir(self) -> Path:
        return self.ytingest_home / "pg"
