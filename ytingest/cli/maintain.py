"""``ytingest reprocess`` and ``ytingest delete``: upgrading and removing stored videos.

``reprocess --embed-model M`` alone re-embeds: each video's stored texts are embedded by M and its
vectors replaced in one transaction; no audio, no ASR model is loaded. With ``--asr-model`` the
videos go through the pipeline again (kept audio first, else a new download) and the store
replaces each one's rows in one transaction. See docs/UPGRADES.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ytingest.config import Settings
from ytingest.engine import Engine
from ytingest.errors import ConfigError, YtingestError
from ytingest.items import VideoRef
from ytingest.logs import get_logger
from ytingest.pipeline.context import RunContext
from ytingest.termtext import safe

log = get_logger()
EXIT_OK, EXIT_FAILED = 0, 1


def _selection(args: argparse.Namespace) -> dict[str, Any]:
    return {"video": args.video, "channel": args.channel}


async def cmd_reprocess(engine: Engine, args: argparse.Namespace) -> int:
    """Re-transcribe (``--asr-model``) or only re-embed (``--embed-model`` alone) stored videos."""
    if args.asr_model is None and args.embed_model is None:
        raise ConfigError("reprocess needs --asr-model (re-transcribe) or --embed-model (re-embed only)")
    chosen = await engine.database.stored_refs(**_selection(args))
    if not chosen and (args.video or args.channel):
        raise ConfigError(f"no stored video matches {args.video or args.channel}")
    if args.asr_model is not None:
        return await _retranscribe(engine, [ref for ref, _, _ in chosen], as_json=args.json)
    return await _reembed(engine, chosen, as_json=args.json)


async def _reembed(
    engine: Engine, chosen: list[tuple[VideoRef, str | None, str | None]], *, as_json: bool
) -> int:
    """Embed each video's stored texts with the engine's embedder and replace its vectors."""
    db, embedder = engine.database, await engine.embedder()
    log.info("reprocess_started", mode="re-embed", asr="none", embed_model=embedder.name, videos=len(chosen))
    started, done, segments, skipped = time.monotonic(), 0, 0, 0
    failures: list[dict[str, str]] = []
    for ref, _, old in chosen:
        vlog = log.bind(video_id=ref.id)
        if old == embedder.name:
            skipped += 1
            vlog.info("video_skipped", reason=f"already embedded with {embedder.name}")
            continue
        try:
            rows = await db.segment_texts(ref.id)
            vectors = await asyncio.to_thread(embedder.encode, [text for _, text in rows])
            await db.replace_vectors(ref.id, [i for i, _ in rows], vectors, embed_model=embedder.name)
        except YtingestError as exc:
            vlog.warning("video_failed", stage="re-embed", reason=str(exc))
            failures.append({"video_id": ref.id, "reason": str(exc)})
            continue
        done, segments = done + 1, segments + len(rows)
        vlog.info("video_reembedded", segments=len(rows), embed_model=embedder.name, was=old)
    pruned = await db.prune_embed_models()
    await db.ensure_search_index()
    outcome = {
        "mode": "re-embed",
        "embed_model": embedder.name,
        "done": done,
        "skipped": skipped,
        "failed": len(failures),
        "segments": segments,
        "models_dropped": pruned,
        "failures": failures,
        "wall_seconds": round(time.monotonic() - started, 3),
    }
    log.info("reprocess_finished", **{k: v for k, v in outcome.items() if k != "failures"})
    _print(outcome, as_json=as_json)
    return EXIT_FAILED if failures else EXIT_OK


async def _retranscribe(engine: Engine, refs: list[VideoRef], *, as_json: bool) -> int:
    """The videos through the whole pipeline again, kept audio first; the store replaces their rows."""
    s = engine.settings
    reused = await asyncio.to_thread(_offer_kept_audio, [r.id for r in refs], _audio_dirs(s), s.kept_dir)
    log.info(
        "reprocess_started", mode="re-transcribe", asr_model=s.asr_model, videos=len(refs), kept_audio=reused
    )

    async def feed(ctx: RunContext, first: asyncio.Queue[Any]) -> None:
        for ref in refs:
            if ctx.stopping.is_set():
                break
            log.info("video_queued", video_id=ref.id, title=ref.title, reason="reprocess")
            ctx.metrics.queued += 1
            await first.put(ref)
        ctx.metrics.discovery_done = True
        await first.put(None)

    summary = await engine.work(feed, name="reprocess")
    pruned = await engine.database.prune_embed_models()
    outcome = {"mode": "re-transcribe", **summary.to_dict(), "kept_audio": reused, "models_dropped": pruned}
    _print(outcome, as_json=as_json)
    if summary.stopped_early:
        return 130
    return EXIT_FAILED if summary.failed else EXIT_OK


async def cmd_delete(engine: Engine, args: argparse.Namespace) -> int:
    """Remove one video or a channel's videos: rows, ledger entries, voices, kept audio."""
    deleted = await engine.database.delete_videos(**_selection(args))
    if not deleted.videos and deleted.channel is None:
        raise ConfigError(f"nothing stored matches {args.video or args.channel}")
    s = engine.settings
    files = await asyncio.to_thread(_remove_audio, deleted.videos, [*_audio_dirs(s), s.kept_dir])
    outcome = {**asdict(deleted), "audio_files": files}
    log.info("videos_deleted", videos=len(deleted.videos), segments=deleted.segments, audio_files=len(files))
    _print(outcome, as_json=args.json)
    return EXIT_OK


def print_models(models: list[dict[str, Any]]) -> None:
    """The status lines of which stored videos have which models."""
    if not models:
        return
    print("models:")
    for m in models:
        dim = f" ({m['dim']}-d)" if m["dim"] else ""
        ids = ", ".join(m["video_ids"][:5]) + (", …" if len(m["video_ids"]) > 5 else "")
        print(
            safe(
                f"  embed {m['embed_model']}{dim}, asr {m['asr_model']}: {m['videos']} videos,"
                f" {m['segments']} segments ({ids})"
            )
        )


def _print(outcome: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        import json

        print(json.dumps(outcome, default=str))
        return
    for key, value in outcome.items():
        if key != "failures" and value not in ([], None):
            print(safe(f"{key}: {value}"))
    for f in outcome.get("failures", []):
        print(safe(f"failed {f['video_id']}: {f['reason']}"))


def _audio_dirs(s: Settings) -> list[Path]:
    """Where kept audio may lie: the audio folder, and each worker's."""
    dirs = [s.ytingest_home / "audio"]
    workers = s.ytingest_home / "workers"
    if workers.is_dir():
        dirs += [w / "audio" for w in sorted(workers.iterdir()) if (w / "audio").is_dir()]
    return dirs


def _files_of(ids: Iterable[str], folders: Iterable[Path]) -> list[Path]:
    """The audio files named ``<id>.<ext>`` in ``folders``: names compared, never globbed."""
    wanted = set(ids)
    found = []
    for folder in folders:
        if folder.is_dir():
            found += [e for e in folder.iterdir() if e.is_file() and e.name.rsplit(".", 1)[0] in wanted]
    return found


def _offer_kept_audio(ids: list[str], folders: list[Path], kept: Path) -> int:
    """Move the videos' kept audio (KEEP_AUDIO) into ``kept/``, where the download stage takes it
    instead of downloading again; return how many files."""
    files = _files_of(ids, folders)
    if files:
        kept.mkdir(parents=True, exist_ok=True)
    for f in files:
        f.replace(kept / f.name)
    return len(files)


def _remove_audio(ids: list[str], folders: list[Path]) -> list[str]:
    files = _files_of(ids, folders)
    for f in files:
        f.unlink(missing_ok=True)
    return [f.name for f in files]
