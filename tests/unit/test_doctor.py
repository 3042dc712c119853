"""``ytingest doctor``'s verdicts: yt-dlp's debug header read, the version's age, cookie files,
GPU/CPU mode, disk, and the report's JSON — pure functions, no yt-dlp, database or models."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ytingest.doctor import Check, Report, format_line, summary_line
from ytingest.doctor.checks import (
    GpuFacts,
    JsRuntimes,
    cookie_file_check,
    cookies_check,
    disk_check,
    gpu_checks,
    js_runtime_check,
    parse_js_runtimes,
    parse_ytdlp_version,
    version_date,
    ytdlp_version_check,
)

# what ``yt-dlp -v`` (2026.10.26, pip) prints before it asks for a URL, trimmed to the lines read
HEADER = """\
[debug] Command-line config: ['--ignore-config', '--cookies', '/home/u/secret-cookies.txt', '-v']
[debug] yt-dlp version stable@2026.10.26 from yt-dlp/yt-dlp [c91f8de0b] (pip)
[debug] exe versions: none
[debug] Optional libraries: Cryptodome-3.24.2, brotli-1.2.1, certifi-2026.10.19, yt_dlp_ejs-0.8.0
[debug] JS runtimes: deno-2.9.8
[debug] Proxy map: {}

Usage: yt-dlp [OPTIONS] URL [URL...]

yt-dlp: error: You must provide at least one URL.
"""


def header(runtimes: str, libraries: str = "certifi-2026.10.19, yt_dlp_ejs-0.8.0") -> str:
    return HEADER.replace("JS runtimes: deno-2.9.8", f"JS runtimes: {runtimes}").replace(
        "Cryptodome-3.24.2, brotli-1.2.1, certifi-2026.10.19, yt_dlp_ejs-0.8.0", libraries
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("deno-2.9.8", JsRuntimes(("deno-2.9.8",))),
        (
            "deno-2.9.8, node-20.20.2 (unsupported)",
            JsRuntimes(("deno-2.9.8",), ("node-20.20.2 (unsupported)",)),
        ),
        ("node-20.20.2 (unsupported)", JsRuntimes((), ("node-20.20.2 (unsupported)",))),
        ("bun (unknown)", JsRuntimes((), ("bun (unknown)",))),
        ("none", JsRuntimes(())),
        ("none (disabled)", JsRuntimes((), disabled=True)),
    ],
)
def test_js_runtimes_line_is_read_as_yt_dlp_prints_it(line: str, expected: JsRuntimes) -> None:
    """Every form of yt-dlp's ``[debug] JS runtimes:`` line (YoutubeDL.print_debug_header)."""
    assert parse_js_runtimes(header(line)) == expected


def test_no_js_runtimes_line_is_none() -> None:
    """Output without the header (yt-dlp broke first) is not read as "no runtime"."""
    assert parse_js_runtimes("yt-dlp: error: no such option: --bogus\n") is None


def test_version_comes_from_the_header() -> None:
    """``stable@2026.10.26`` and a nightly's ``nightly@2026.11.02.232843`` both give the version."""
    assert parse_ytdlp_version(HEADER) == "2026.10.26"
    nightly = HEADER.replace("stable@2026.10.26", "nightly@2026.11.02.232843")
    assert parse_ytdlp_version(nightly) == "2026.11.02.232843"
    assert version_date("2026.11.02.232843") == date(2026, 11, 2)
    assert version_date("not-a-date") is None


def test_a_recent_yt_dlp_is_ok() -> None:
    """Released 30 days ago: ok, with its age."""
    check = ytdlp_version_check("2026.10.26", date(2026, 11, 25))
    assert (check.status, check.facts["ytdlp_version"]) == ("ok", "2026.10.26")
    assert "30 days old" in check.detail


def test_an_old_yt_dlp_is_a_warning_with_the_upgrade_command() -> None:
    """More than 90 days old: warn, and say how to upgrade (pip with yt-dlp's default extras)."""
    check = ytdlp_version_check("2026.01.02", date(2026, 11, 25))
    assert check.status == "warn"
    assert "327 days old" in check.detail
    assert 'pip install -U "yt-dlp[default]"' in check.fix


def test_a_custom_yt_dlp_gets_its_own_upgrade_advice() -> None:
    """With YTDLP_PATH, pip would upgrade the wrong yt-dlp: the fix says so."""
    check = ytdlp_version_check("2025.01.02", date(2026, 11, 25), custom_path=True)
    assert check.status == "warn" and "YTDLP_PATH" in check.fix


def test_a_version_from_the_future_or_unreadable() -> None:
    """A clock behind the release date is not an error; an unreadable version is a warning."""
    assert ytdlp_version_check("2026.10.26", date(2026, 10, 1)).status == "ok"
    assert ytdlp_version_check(None, date(2026, 10, 1)).status == "warn"


def test_deno_with_ejs_is_ok() -> None:
    """yt-dlp reports deno and lists yt_dlp_ejs: ok, and the facts name the runtime."""
    check = js_runtime_check(HEADER, 2)
    assert check.status == "ok"
    assert check.facts["js_runtime"] == "deno-2.9.8" and check.facts["yt_dlp_ejs"] is True
    assert "secret-cookies" not in check.detail + check.fix  # the command line is never echoed


def test_a_runtime_without_the_ejs_scripts_is_a_warning() -> None:
    """A runtime but no yt-dlp-ejs: warn, fix installs yt-dlp's default extras."""
    check = js_runtime_check(header("deno-2.9.8", libraries="certifi-2026.10.19"), 2)
    assert check.status == "warn" and "yt-dlp-ejs" in check.detail and "yt-dlp[default]" in check.fix


def test_no_runtime_fails_and_says_how_to_fix() -> None:
    """yt-dlp finds none (or only an unsupported one): fail, naming JS_RUNTIME and deno."""
    for line in ("none", "node-16.0.0 (unsupported)"):
        check = js_runtime_check(header(line), 2)
        assert check.status == "fail"
        assert "no JavaScript runtime" in check.detail and "YouTube" in check.detail
        assert "JS_RUNTIME" in check.fix and "deno" in check.fix
        assert check.facts["js_runtime"] is None


def test_disabled_runtimes_name_the_setting() -> None:
    """``none (disabled)`` is JS_RUNTIME=none."""
    check = js_runtime_check(header("none (disabled)"), 2)
    assert check.status == "fail" and "JS_RUNTIME=none" in check.detail


def test_a_refused_setting_fails_the_runtime_check_with_its_line() -> None:
    """When ytingest refuses to start yt-dlp (a missing JS_RUNTIME path), the line says why."""
    check = js_runtime_check("ERROR: JS_RUNTIME: /nonexistent/deno does not exist", None)
    assert check.status == "fail"
    assert check.detail == "ytingest cannot start yt-dlp: JS_RUNTIME: /nonexistent/deno does not exist"
    assert "JS_RUNTIME=" in check.fix


def test_a_broken_child_reports_its_error_redacted() -> None:
    """yt-dlp's own error line is shown, a password in it masked."""
    out = "Usage: yt-dlp\nyt-dlp: error: bad proxy http://me:hunter2@proxy:3128\n"
    check = js_runtime_check(out, 2)
    assert check.status == "fail" and "exited 2" in check.detail
    assert "hunter2" not in check.detail and "bad proxy" in check.detail


NETSCAPE = (
    "# Netscape HTTP Cookie File\n"
    "# This is a generated file! Do not edit.\n\n"
    ".youtube.com\tTRUE\t/\tTRUE\t1999999999\tLOGIN_INFO\tsecret-value-1\n"
    "#HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tsecret-value-2\n"
    ".youtube.com\tTRUE\t/\tTRUE\t1000\tOLD\tsecret-value-3\n"
)


def test_a_netscape_cookie_file_is_counted_never_shown() -> None:
    """Three cookies (one HttpOnly, one expired): ok, counts only; no name, domain or value."""
    check = cookie_file_check(NETSCAPE, now=1_800_000_000)
    assert check.status == "ok" and check.facts == {"cookies": 3}
    assert check.detail == "COOKIES_FILE: 3 cookies (1 expired)"
    shown = format_line(check) + check.fix
    assert not any(s in shown for s in ("secret", "youtube", "LOGIN_INFO"))


@pytest.mark.parametrize(
    ("text", "status", "words"),
    [
        ('[{"domain": ".youtube.com", "value": "secret"}]', "fail", "JSON"),
        ("just some text\nnot cookies\n", "fail", "no Netscape-format cookies"),
        ("", "fail", "no Netscape-format cookies"),
        (NETSCAPE + "a line with spaces only\n", "warn", "1 lines yt-dlp would skip"),
        (".youtube.com\tTRUE\t/\tTRUE\t1000\tOLD\tsecret\n", "warn", "all expired"),
    ],
)
def test_bad_cookie_files(text: str, status: str, words: str) -> None:
    """JSON, no cookies at all, skipped lines, all expired: each named, the value never shown."""
    check = cookie_file_check(text, now=1_800_000_000)
    assert check.status == status and words in check.detail
    assert "secret" not in check.detail


def test_cookie_settings(tmp_path: Path) -> None:
    """An unreadable file fails; a browser is reported (not its profile), not tried; none is info."""
    missing = cookies_check(tmp_path / "nope.txt", None, now=0)
    assert missing.status == "fail" and "cannot be read" in missing.detail
    browser = cookies_check(None, "firefox:/home/u/.mozilla/secret-profile", now=0)
    assert browser.status == "info" and "firefox" in browser.detail and "secret" not in browser.detail
    assert cookies_check(None, None, now=0).status == "info"
    (tmp_path / "c.txt").write_text(NETSCAPE)
    assert cookies_check(tmp_path / "c.txt", None, now=0).status == "ok"


CPU_ONLY = GpuFacts(0, ("float32", "int8", "int8_float32"), "2.13.0+cpu", False, None, None, ())
H200 = (("NVIDIA H200", 130 * 2**30, 140 * 2**30),)


def test_cpu_only_is_information_not_failure() -> None:
    """No GPU: three info lines that say CPU mode."""
    checks = gpu_checks(CPU_ONLY)
    assert [c.status for c in checks] == ["info", "info", "info"]
    assert all("CPU mode" in c.detail for c in checks)
    assert Report(tuple(checks)).ok


def test_a_gpu_every_library_sees() -> None:
    """CTranslate2 and torch see CUDA: ok, with versions, compute types and free VRAM."""
    f = GpuFacts(1, ("float16", "int8"), "2.13.0+cu128", True, "12.8", 91002, H200)
    ct2, torch, gpu = gpu_checks(f)
    assert (ct2.status, torch.status, gpu.status) == ("ok", "ok", "ok")
    assert "float16" in ct2.detail and "CUDA 12.8, cuDNN 91002" in torch.detail
    assert gpu.detail == "NVIDIA H200: 130.0 of 140.0 GiB free"
    assert gpu.facts["gpus"] == [{"name": "NVIDIA H200", "vram_free": 130 * 2**30, "vram_total": 140 * 2**30}]


def test_a_gpu_the_libraries_cannot_use_is_a_warning() -> None:
    """NVML sees a GPU but CTranslate2 and a CPU torch do not: warn each, with the fix."""
    f = GpuFacts(0, ("float32", "int8"), "2.13.0+cpu", False, None, None, H200)
    ct2, torch, _ = gpu_checks(f)
    assert (ct2.status, torch.status) == ("warn", "warn")
    assert "cudnn" in ct2.fix and "torch" in torch.fix


def test_cuda_asked_for_but_missing_fails() -> None:
    """ASR_DEVICE=cuda or EMBED_DEVICE=cuda without a CUDA device: a run would fail, so does doctor."""
    ct2, torch, _ = gpu_checks(CPU_ONLY, asr_device="cuda", embed_device="cuda")
    assert (ct2.status, torch.status) == ("fail", "fail")


def test_disk_thresholds() -> None:
    """Under MIN_FREE_BYTES fails, under 5 GiB warns, more is ok."""
    home = Path("/data")
    assert disk_check(home, 100 * 2**20, min_free_bytes=512 * 2**20).status == "fail"
    assert disk_check(home, 2 * 2**30, min_free_bytes=512 * 2**20).status == "warn"
    ok = disk_check(home, 50 * 2**30, min_free_bytes=512 * 2**20)
    assert ok.status == "ok" and ok.detail == "50.0 GiB free in /data"


def test_report_json_and_lines() -> None:
    """ok unless a check failed; facts at the top level; one line per check, the fix when not ok."""
    good = Check("js runtime", "ok", "yt-dlp uses deno-2.9.8", facts={"js_runtime": "deno-2.9.8"})
    warn = Check("yt-dlp", "warn", "old", "upgrade it")
    report = Report((good, warn))
    doc = report.to_dict()
    assert doc["ok"] is True and doc["js_runtime"] == "deno-2.9.8"
    assert doc["checks"][1] == {"name": "yt-dlp", "status": "warn", "detail": "old", "fix": "upgrade it"}
    assert format_line(warn) == "warn  yt-dlp       old → upgrade it"
    assert summary_line(report) == "ready: a stream would work"
    failed = Report((good, Check("database", "fail", "unreachable", "check DATABASE_URL")))
    assert not failed.ok and summary_line(failed) == "not ready: 1 check(s) failed (database)"
