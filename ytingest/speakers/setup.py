"""Build the speaker tagger for a run: load the encoder, enrol ``voices/`` when given, and take
every voiceprint of that encoder the database holds (enrolled from a folder, or named later)."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.models.speakers import load_encoder
from ytingest.speakers.enrol import enrol
from ytingest.speakers.tagger import VoiceTagger


async def build_tagger(settings: Settings, db: Database, executor: Executor) -> VoiceTagger:
    """The encoder (loaded in ``executor``) and the voiceprints to match; anonymous voices are
    named per channel by the store, so nothing is kept here between videos."""
    s = settings
    encoder = await asyncio.get_running_loop().run_in_executor(
        executor, lambda: load_encoder(s.speaker_backend, device=s.speaker_device, model=s.pyannote_model)
    )
    if s.voices_dir is not None:
        await enrol(db, encoder, executor, s.voices_dir)
    prints = [p for p in await db.voiceprints() if p.model == encoder.name]
    return VoiceTagger.from_settings(encoder, prints, s)
