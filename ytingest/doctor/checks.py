"""The checks' results and verdicts: pure functions over what was read (yt-dlp's debug header, a
version, a cookie file's text, what CTranslate2, torch and NVML report, free bytes), unit-tested
without the real things. Nothing secret goes into a result: no cookie, no password, no proxy."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from ytingest.logs import redact

Status = Literal["ok", "warn", "fail", "info"]
MAX_YTDLP_AGE_DAYS = 90  # YouTube changes often; a yt-dlp older than this usually lags behind
LOW_DISK_BYTES = 5 * 2**30
GIB = 2**30


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)  # machine-readable, for ``--json``

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True, slots=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """No check failed: a stream would work."""
        return all(c.status != "fail" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """``{"ok", "checks": [...]}`` plus every check's facts (``js_runtime``, ``pgvector``, ...)."""
        facts: dict[str, Any] = {}
        for c in self.checks:
            facts.update(c.facts)
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks], **facts}


# ---- yt-dlp: its version and the JS runtime it reports ------------------------------------------

_HEADER_VERSION = re.compile(r"^\[debug\] yt-dlp version (?:\S+@)?(\d{4}\.\d{2}\.\d{2}(?:\.\d+)?)", re.M)
_JS_RUNTIMES = re.compile(r"^\[debug\] JS runtimes: (.*)$", re.M)
_LIBRARIES = re.compile(r"^\[debug\] Optional libraries: (.*)$", re.M)
_ERROR = re.compile(r"^(?:ERROR:|\S*: error: )")  # yt-dlp's own errors and its option parser's
_UPGRADE = f'{sys.executable} -m pip install -U "yt-dlp[default]"'


@dataclass(frozen=True, slots=True)
class JsRuntimes:
    """yt-dlp's ``[debug] JS runtimes:`` line: usable runtimes (``deno-2.9.8``), the rest, disabled."""

    usable: tuple[str, ...]
    unusable: tuple[str, ...] = ()
    disabled: bool = False


def parse_js_runtimes(header: str) -> JsRuntimes | None:
    """The runtimes yt-dlp's debug header names; None when it has no such line."""
    found = _JS_RUNTIMES.search(header)
    if found is None:
        return None
    value = found.group(1).strip()
    if value.startswith("none"):
        return JsRuntimes((), disabled="disabled" in value)
    entries = [e.strip() for e in value.split(",") if e.strip()]
    usable = tuple(e for e in entries if not e.endswith(("(unsupported)", "(unknown)")))
    return JsRuntimes(usable, tuple(e for e in entries if e not in usable))


def parse_ytdlp_version(header: str) -> str | None:
    """``2026.10.26`` from ``[debug] yt-dlp version stable@2026.10.26 from ...``."""
    found = _HEADER_VERSION.search(header)
    return found.group(1) if found else None


def has_library(header: str, name: str) -> bool:
    """Whether yt-dlp's ``Optional libraries`` line lists ``name`` (e.g. ``yt_dlp_ejs``)."""
    found = _LIBRARIES.search(header)
    return found is not None and any(
        lib.strip().split("-", 1)[0] == name for lib in found.group(1).split(",")
    )


def version_date(version: str) -> date | None:
    """A yt-dlp version is its release date: ``2026.10.26`` (nightlies add ``.HHMMSS``)."""
    try:
        y, m, d = (int(p) for p in version.split(".")[:3])
        return date(y, m, d)
    except ValueError:
        return None


def ytdlp_version_check(version: str | None, today: date, *, custom_path: bool = False) -> Check:
    """ok when released within MAX_YTDLP_AGE_DAYS of ``today``; warn when older or unreadable."""
    fix = "update that yt-dlp (yt-dlp -U), or unset YTDLP_PATH" if custom_path else _UPGRADE
    facts = {"ytdlp_version": version}
    released = version_date(version) if version else None
    if version is None or released is None:
        return Check(
            "yt-dlp", "warn", f"cannot read yt-dlp's version ({version or 'none printed'})", fix, facts
        )
    age = (today - released).days
    if age > MAX_YTDLP_AGE_DAYS:
        detail = f"yt-dlp {version} is {age} days old: YouTube changes often, old versions miss formats"
        return Check("yt-dlp", "warn", detail, fix, facts)
    return Check("yt-dlp", "ok", f"yt-dlp {version} ({max(age, 0)} days old)", "", facts)


def js_runtime_check(header: str, returncode: int | None) -> Check:
    """fail unless yt-dlp itself reports a usable JavaScript runtime (YouTube needs one)."""
    runtimes = parse_js_runtimes(header)
    fix = (
        "deno ships with ytingest: reinstall it (pip install deno), or point JS_RUNTIME at one,"
        " e.g. JS_RUNTIME=deno:/path/to/deno or node:/path/to/node"
    )
    if runtimes is None:
        what = "ytingest cannot start yt-dlp" if returncode is None else f"yt-dlp exited {returncode} early"
        if "JS_RUNTIME" not in header:
            fix = "check YTDLP_PATH, YTDLP_ARGS and COOKIES_FILE"
        return Check("js runtime", "fail", f"{what}{_last_error(header)}", fix, {"js_runtime": None})
    facts: dict[str, Any] = {
        "js_runtime": runtimes.usable[0] if runtimes.usable else None,
        "js_runtimes": list(runtimes.usable),
        "yt_dlp_ejs": has_library(header, "yt_dlp_ejs"),
    }
    if not runtimes.usable:
        if runtimes.disabled:
            why = "yt-dlp has every JS runtime disabled (JS_RUNTIME=none)"
        else:
            why = "yt-dlp finds no JavaScript runtime" + (
                f" it can use (found {', '.join(runtimes.unusable)})" if runtimes.unusable else ""
            )
        detail = f"{why}: YouTube formats go missing without one"
        return Check("js runtime", "fail", detail, fix, facts)
    detail = f"yt-dlp uses {runtimes.usable[0]}"
    if not facts["yt_dlp_ejs"]:
        detail += "; yt-dlp-ejs (YouTube's challenge scripts) is not installed"
        return Check("js runtime", "warn", detail, _UPGRADE, facts)
    return Check("js runtime", "ok", detail + " with yt-dlp-ejs", "", facts)


def _last_error(output: str) -> str:
    """yt-dlp's last error line (redacted), for a child that broke before its header."""
    errors = [line for line in output.splitlines() if _ERROR.search(line)]
    return f": {redact(errors[-1].removeprefix('ERROR: '))[:200]}" if errors else ""


# ---- cookies -------------------------------------------------------------------------------------

_COOKIE_FIX = "export cookies.txt in Netscape format (a 'Get cookies.txt' browser extension)"


def cookie_file_check(text: str, now: float) -> Check:
    """A Netscape cookie file as yt-dlp reads it: 7 tab-separated fields a line, ``#`` comments.
    Reports counts only, never a name, domain or value."""
    valid = bad = expired = 0
    for raw in text.splitlines():
        line = raw.removeprefix("#HttpOnly_")
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 7:
            if line.lstrip()[:1] in ("[", "{"):
                return Check(
                    "cookies", "fail", "COOKIES_FILE is JSON, not a Netscape cookie file", _COOKIE_FIX
                )
            bad += 1
            continue
        valid += 1
        expires = fields[4].strip()
        if expires not in ("", "0") and expires.replace(".", "", 1).isdigit() and float(expires) < now:
            expired += 1
    facts = {"cookies": valid}
    if valid == 0:
        return Check("cookies", "fail", "COOKIES_FILE holds no Netscape-format cookies", _COOKIE_FIX, facts)
    detail = f"COOKIES_FILE: {valid} cookies"
    if bad:
        return Check("cookies", "warn", f"{detail}; {bad} lines yt-dlp would skip", _COOKIE_FIX, facts)
    if expired == valid:
        return Check("cookies", "warn", f"{detail}, all expired", "export fresh cookies", facts)
    return Check("cookies", "ok", detail + (f" ({expired} expired)" if expired else ""), "", facts)


def cookies_check(cookies_file: Path | None, from_browser: str | None, now: float) -> Check:
    """COOKIES_FILE readable and Netscape-shaped; COOKIES_FROM_BROWSER reported, not tried."""
    if cookies_file is not None:
        try:
            text = cookies_file.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return Check(
                "cookies",
                "fail",
                f"COOKIES_FILE cannot be read: {exc.strerror or type(exc).__name__}",
                _COOKIE_FIX,
            )
        return cookie_file_check(text, now)
    if from_browser:
        browser = from_browser.split(":", 1)[0].split("+", 1)[0]
        detail = f"cookies from the {browser} browser (COOKIES_FROM_BROWSER; read by yt-dlp at run time)"
        return Check("cookies", "info", detail)
    return Check(
        "cookies",
        "info",
        "no cookies: fine for most channels",
        "on bot checks, use --cookies FILE or --cookies-from-browser BROWSER",
    )


# ---- GPU, CUDA, cuDNN ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuFacts:
    """What CTranslate2 (ASR), torch (embeddings, speakers) and NVML see."""

    ct2_devices: int
    ct2_compute_types: tuple[str, ...]
    torch_version: str | None
    torch_cuda: bool
    torch_cuda_version: str | None
    cudnn: int | None
    gpus: tuple[tuple[str, int, int], ...]  # (name, free bytes, total bytes) per NVML device


def gpu_checks(f: GpuFacts, *, asr_device: str = "auto", embed_device: str = "auto") -> list[Check]:
    """No GPU is CPU mode (info); a GPU that a library cannot use is a warning; a device set to
    ``cuda`` that cannot be used fails."""
    cuda_fix = "install CUDA 12 with cuDNN 9 (pip install nvidia-cublas-cu12 nvidia-cudnn-cu12==9.*)"
    types = ", ".join(f.ct2_compute_types)
    ct2: Check
    if f.ct2_devices:
        ct2 = Check("ctranslate2", "ok", f"ASR on CUDA: {f.ct2_devices} device(s), compute types {types}")
    elif asr_device == "cuda":
        ct2 = Check("ctranslate2", "fail", "ASR_DEVICE=cuda but CTranslate2 sees no CUDA device", cuda_fix)
    elif f.gpus:
        ct2 = Check("ctranslate2", "warn", "a GPU is present but CTranslate2 sees no CUDA device", cuda_fix)
    else:
        ct2 = Check("ctranslate2", "info", f"no GPU: ASR in CPU mode (compute types {types})")
    cudnn = str(f.cudnn) if f.cudnn else "none"
    seen = f"torch {f.torch_version}: CUDA {f.torch_cuda_version or 'none'}, cuDNN {cudnn}"
    torch_fix = "install a CUDA build of torch (https://pytorch.org/get-started/locally/)"
    th: Check
    if f.torch_version is None:
        th = Check("torch", "fail", "torch cannot be imported", "reinstall ytingest")
    elif f.torch_cuda:
        th = Check("torch", "ok", f"{seen}; embeddings on CUDA")
    elif embed_device == "cuda":
        th = Check("torch", "fail", f"EMBED_DEVICE=cuda but {seen}, no CUDA device", torch_fix)
    elif f.gpus:
        th = Check("torch", "warn", f"a GPU is present but {seen} cannot use it", torch_fix)
    else:
        th = Check("torch", "info", f"no GPU: {seen}; embeddings in CPU mode")
    facts = {
        "cuda_devices": f.ct2_devices,
        "torch_cuda": f.torch_cuda_version if f.torch_cuda else None,
        "cudnn": f.cudnn,
        "gpus": [{"name": n, "vram_free": free, "vram_total": total} for n, free, total in f.gpus],
    }
    if not f.gpus:
        return [ct2, th, Check("gpu", "info", "no GPU: CPU mode (NVML finds no NVIDIA GPU)", "", facts)]
    vram = "; ".join(f"{n}: {free / GIB:.1f} of {total / GIB:.1f} GiB free" for n, free, total in f.gpus)
    return [ct2, th, Check("gpu", "ok", vram, "", facts)]


# ---- disk ----------------------------------------------------------------------------------------


def disk_check(home: Path, free: int, *, min_free_bytes: int) -> Check:
    """fail below MIN_FREE_BYTES (downloads would wait for space); warn below LOW_DISK_BYTES."""
    detail = f"{free / GIB:.1f} GiB free in {home}"
    facts = {"disk_free_bytes": free}
    if free < min_free_bytes:
        return Check(
            "disk", "fail", f"{detail}, under MIN_FREE_BYTES", "free space, or set YTINGEST_HOME", facts
        )
    if free < LOW_DISK_BYTES:
        return Check(
            "disk", "warn", f"{detail}: little room for audio", "free space, or set YTINGEST_HOME", facts
        )
    return Check("disk", "ok", detail, "", facts)
