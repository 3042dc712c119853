"""The doctor's probes of the real things: the yt-dlp child exactly as a run starts it, the
database (embedded or DATABASE_URL; nothing created or migrated), the models through the Engine's
own loaders, CTranslate2/torch/NVML, the disk."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

from ytingest.childenv import child_env
from ytingest.config import Settings
from ytingest.doctor.checks import Check, GpuFacts
from ytingest.errors import ConfigError
from ytingest.logs import redact
from ytingest.ytdlp.options import private_cookies, ytdlp_invocation


async def ytdlp_header(settings: Settings, timeout_s: float = 60.0) -> tuple[int | None, str]:
    """The yt-dlp child as every run starts it, plus ``-v`` and no URL: it prints its debug header
    (version, libraries, JS runtimes) and exits at once, without the network. Returns
    (exit code or None when it could not start, its output). A setting ytingest refuses (a missing
    JS_RUNTIME path, an unreadable cookies file, a refused YTDLP_ARGS option) is an ``ERROR:`` line."""
    with tempfile.TemporaryDirectory() as scratch:  # yt-dlp rewrites its cookies file: a copy
        try:
            command = private_cookies(ytdlp_invocation(settings), Path(scratch))
        except ConfigError as exc:
            return None, f"ERROR: {exc}"
        except OSError as exc:
            return None, f"ERROR: cannot read the cookies file: {exc.strerror or type(exc).__name__}"
        return await _header(command, timeout_s)


async def _header(command: list[str], timeout_s: float) -> tuple[int | None, str]:
    try:
        return await run_child([*command, "-v"], timeout_s)
    except OSError as exc:
        return None, f"ERROR: {exc.strerror or exc}"
    except TimeoutError:
        return None, f"ERROR: no answer within {timeout_s:.0f} s"


async def run_child(command: list[str], timeout_s: float) -> tuple[int, str]:
    """Run ``command`` (no stdin, our environment less its secrets) and return its exit code and
    output (stdout and stderr together). OSError: it could not start; TimeoutError: it did not
    end within ``timeout_s`` (it is killed)."""
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=child_env(),
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None  # set once communicate() returns
    return proc.returncode, out.decode("utf-8", "replace")


def probe_gpu() -> GpuFacts:
    """Ask CTranslate2, torch and NVML (blocking: call it in a thread)."""
    import ctranslate2

    from ytingest.monitor.gpu import GpuProbe

    devices = ctranslate2.get_cuda_device_count()
    types = tuple(sorted(ctranslate2.get_supported_compute_types("cuda" if devices else "cpu")))
    try:
        import torch

        version: str | None = str(torch.__version__)
        cuda = bool(torch.cuda.is_available())
        cuda_version = torch.version.cuda
        cudnn_lib = torch.backends.cudnn
        cudnn = cudnn_lib.version() if cudnn_lib.is_available() else None  # type: ignore[no-untyped-call]
    except ImportError:
        version, cuda, cuda_version, cudnn = None, False, None, None
    probe = GpuProbe()
    try:
        gpus = tuple((s.name, s.vram_total - s.vram_used, s.vram_total) for s in probe.sample())
    finally:
        probe.close()
    return GpuFacts(devices, types, version, cuda, cuda_version, cudnn, gpus)


def installed_version(package: str) -> str | None:
    """An installed distribution's version from its metadata (None when it is not installed)."""
    try:
        return package_version(package)
    except PackageNotFoundError:
        return None


def free_bytes(path: Path) -> int:
    """Free space where ``path`` is (or would be created)."""
    for p in (path, *path.parents):
        if p.exists():
            return shutil.disk_usage(p).free
    return shutil.disk_usage(Path.cwd()).free


# ---- the database and the models ------------------------------------------------------------------


async def database_check(settings: Settings) -> Check:
    """Connect (starting the embedded server when DATABASE_URL is unset) and read pgvector's version.
    Nothing is created or migrated."""
    from ytingest.db.embedded import EmbeddedPostgres
    from ytingest.db.pool import describe_dsn, server_versions
    from ytingest.errors import ConfigError, StoreError

    embedded = EmbeddedPostgres(settings.pg_dir) if settings.database_url is None else None
    where = f"embedded PostgreSQL in {settings.pg_dir}" if embedded is not None else "DATABASE_URL"
    fix = "check DATABASE_URL (or unset it for the embedded server)" if embedded is None else "see the error"
    try:
        if embedded is not None:
            dsn = await embedded.start()
        else:
            dsn = settings.database_url.get_secret_value()  # type: ignore[union-attr]
            where = describe_dsn(dsn)
        server, vector, available = await server_versions(dsn)
    except (ConfigError, StoreError, OSError, ValueError, TimeoutError) as exc:
        reason = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return Check("database", "fail", f"cannot reach {where}: {reason}", fix, {"database": where})
    finally:
        if embedded is not None:
            await embedded.stop()
    facts = {"database": where, "postgres": server, "pgvector": vector or available}
    if vector:
        return Check("database", "ok", f"{where}: PostgreSQL {server}, pgvector {vector}", "", facts)
    if available:
        detail = f"{where}: PostgreSQL {server}, pgvector {available} (created on the first run)"
        return Check("database", "ok", detail, "", facts)
    return Check(
        "database",
        "fail",
        f"{where}: PostgreSQL {server} without pgvector",
        "install pgvector on the server",
        facts,
    )


async def model_checks(settings: Settings) -> list[Check]:
    """Load the ASR and embedding models through the Engine's own loaders, offline."""
    from ytingest.engine import Engine

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a model that needs the hub fails here, as offline
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # the loaders read only the model settings; the yt-dlp ones are the js runtime check's (an Engine
    # refuses to start with a bad JS_RUNTIME or cookies file, which must not hide the models' state)
    yt_dlp_free = {"js_runtime": None, "cookies_file": None, "cookies_from_browser": None, "ytdlp_args": ""}
    engine = Engine(settings.model_copy(update=yt_dlp_free))
    checks: list[Check] = []
    try:
        for name, load, setting in (
            ("asr model", engine.transcriber, "ASR_MODEL"),
            ("embed model", engine.embedder, "EMBED_MODEL"),
        ):
            try:
                model = await load()
            except Exception as exc:  # a model's loader fails in many ways; each is this check's failure
                reason = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                fix = f"set {setting} to a model on disk, or 'bundled'"
                checks.append(
                    Check(name, "fail", f"cannot load {getattr(settings, setting.lower())!r}: {reason}", fix)
                )
                continue
            label, device = str(getattr(model, "name", setting)), _device(model, settings)
            key = name.split()[0]
            facts = {f"{key}_model": label, f"{key}_device": device}
            checks.append(Check(name, "ok", f"{label} on {device}", "", facts))
    finally:
        await engine.aclose()
    return checks


def _device(model: object, settings: Settings) -> str:
    """The device a loaded model runs on: its own ``device``, else sentence-transformers' choice."""
    device = getattr(model, "device", None)
    if device is not None:
        return str(device)
    if settings.embed_device != "auto":
        return settings.embed_device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
