"""Enrolment with the real GE2E encoder and a real PostgreSQL: reuse when unchanged, redo on change."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ytingest.db.database import Database
from ytingest.models.ge2e import Ge2eEncoder
from ytingest.speakers.enrol import enrol
from ytingest.testing.dialogues import VOICES_DIR

pytestmark = pytest.mark.slow


async def test_unchanged_voices_are_reused_and_a_changed_file_is_recomputed(
    fresh_dsn: str, tmp_path: Path
) -> None:
    """Second enrolment computes nothing; overwriting Bruno's clip recomputes only Bruno, from new audio."""
    voices = tmp_path / "voices"
    shutil.copytree(VOICES_DIR, voices)
    db = Database(fresh_dsn)
    await db.connect()
    await db.migrate(8)
    encoder = Ge2eEncoder("cpu")
    pool = ThreadPoolExecutor(1)
    try:
        first = await enrol(db, encoder, pool, voices)
        assert sorted(first.computed) == ["Ada Lovelace", "Bruno Diaz", "Chen Wei"] and not first.failed
        second = await enrol(db, encoder, pool, voices)
        assert second.computed == () and sorted(second.reused) == sorted(first.computed)
        shutil.copyfile(voices / "Chen Wei.mp3", voices / "Bruno Diaz.mp3")
        third = await enrol(db, encoder, pool, voices)
        assert third.computed == ("Bruno Diaz",)
        stored = {p.name: p.vector for p in await db.voiceprints()}
        assert float(stored["Bruno Diaz"] @ stored["Chen Wei"]) > 0.99
        assert np.allclose(np.linalg.norm(stored["Ada Lovelace"]), 1.0, atol=1e-4)
        (voices / "Chen Wei.mp3").unlink()
        (voices / "Bruno Diaz.mp3").unlink()
        fourth = await enrol(db, encoder, pool, voices)
        assert [p.name for p in fourth.voiceprints] == ["Ada Lovelace"]
        assert [p.name for p in await db.voiceprints()] == ["Ada Lovelace"]
    finally:
        pool.shutdown()
        await db.close()
