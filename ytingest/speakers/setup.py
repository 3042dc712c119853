"""Build the speaker tagger for a run (load the encoder, enrol voices/, load anonymous voices)
and save the anonymous voices afterwards, so their labels hold across runs."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.errors import ConfigError
from ytingest.models.speakers import SpeakerTagger, load_encoder
from ytingest.speakers.cluster import UnknownSpeakers
from ytingest.speakers.enrol import enrol
from ytingest.speakers.tagger import VoiceTagger


async def build_tagger(settings: Settings, db: Database, executor: Executor) -> VoiceTagger:
    """The encoder (loaded in ``executor``), the voiceprints of ``settings.voices_dir``, and the
    anonymous voices already met with this encoder."""
    if settings.voices_dir is None:
        raise ConfigError("speaker identification needs a voices folder (--voices-dir / VOICES_DIR)")
    s, voices_dir = settings, settings.voices_dir
    encoder = await asyncio.get_running_loop().run_in_executor(
        executor, lambda: load_encoder(s.speaker_backend, device=s.speaker_device, model=s.pyannote_model)
    )
    report = await enrol(db, encoder, executor, voices_dir)
    known = await db.unknown_speakers(encoder.name)
    unknowns = UnknownSpeakers(known, s.speaker_threshold, next_number=await db.max_unknown_number() + 1)
    return VoiceTagger(
        encoder,
        report.voiceprints,
        unknowns,
        threshold=s.speaker_threshold,
        cluster_distance=s.speaker_cluster_distance,
    )


async def save_unknowns(tagger: SpeakerTagger | None, db: Database) -> None:
    """Keep the anonymous voices of this run for the next one (a no-op for other taggers)."""
    if isinstance(tagger, VoiceTagger):
        await db.save_unknown_speakers(tagger.unknowns.snapshot(), model=tagger.encoder.name)
