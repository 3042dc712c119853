"""Enrolment: bring the stored voiceprints in line with a ``voices/`` folder, re-embedding only
the speakers whose clips changed (compared by SHA-256) or whose speaker model changed."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from ytingest.db.database import Database
from ytingest.logs import get_logger
from ytingest.ports import SpeakerEncoder
from ytingest.speakers.voices import ClipError, Voiceprint, embed_voice, scan

log = get_logger()


@dataclass(frozen=True, slots=True)
class EnrolReport:
    """What one enrolment did: the voiceprints in force, and which were (re)computed or reused."""

    voiceprints: tuple[Voiceprint, ...]
    computed: tuple[str, ...]
    reused: tuple[str, ...]
    failed: tuple[ClipError, ...]


async def enrol(db: Database, encoder: SpeakerEncoder, executor: Executor, voices_dir: Path) -> EnrolReport:
    """Scan ``voices_dir``; embed new or changed speakers in ``executor``; store the voiceprints.

    A clip that cannot be decoded or holds no speech is reported (logged with its path) and
    skipped; the speaker's other clips, and every other speaker, still enrol.
    """
    loop = asyncio.get_running_loop()
    sources = await loop.run_in_executor(executor, scan, voices_dir)
    stored = {p.name: p for p in await db.voiceprints()}
    prints, computed, reused, failed = [], [], [], []
    for source in sources:
        old = stored.get(source.name)
        if old is not None and old.model == encoder.name and dict(old.files) == dict(source.files):
            prints.append(old)
            reused.append(source.name)
            continue
        vp, errors = await loop.run_in_executor(executor, embed_voice, encoder, voices_dir, source)
        for e in errors:
            log.warning("voice_clip_failed", speaker=source.name, file=e.path, reason=e.reason)
        failed += errors
        if vp is None:
            log.warning("voice_not_enrolled", speaker=source.name, reason="no usable clip")
            continue
        prints.append(vp)
        computed.append(source.name)
    await db.save_voiceprints([p for p in prints if p.name in computed], keep=[p.name for p in prints])
    log.info(
        "voices_enrolled",
        speakers=[p.name for p in prints],
        computed=computed,
        reused=reused,
        failed=[e.path for e in failed],
        model=encoder.name,
    )
    return EnrolReport(tuple(prints), tuple(computed), tuple(reused), tuple(failed))
