"""Build the speaker tagger for a run: load the encoder (and the segmentation model, with
SPEAKER_DIARIZATION=segmentation), enrol ``voices/`` when given, and take every voiceprint of
that encoder the database holds (enrolled from a folder, or named later)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor

from ytingest.backends import speaker_encoder
from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.ports import SpeakerEncoder, SpeakerTagger
from ytingest.speakers.enrol import enrol
from ytingest.speakers.tagger import VoiceTagger
from ytingest.speakers.voices import Voiceprint


async def build_tagger(settings: Settings, db: Database, executor: Executor) -> SpeakerTagger:
    """The encoder (loaded in ``executor``) and the voiceprints to match; anonymous voices are
    named per channel by the store, so nothing is kept here between videos."""
    s = settings
    loop = asyncio.get_running_loop()
    encoder = await loop.run_in_executor(executor, speaker_encoder, s)
    if s.voices_dir is not None:
        await enrol(db, encoder, executor, s.voices_dir)
    prints = [p for p in await db.voiceprints() if p.model == encoder.name]
    return await loop.run_in_executor(executor, tagger_for, s, encoder, prints)


def tagger_for(s: Settings, encoder: SpeakerEncoder, prints: Sequence[Voiceprint]) -> SpeakerTagger:
    """The tagger SPEAKER_DIARIZATION names, over ``encoder`` and ``prints``. Executor only (the
    segmentation model is loaded here)."""
    if s.speaker_diarization == "windows":
        return VoiceTagger.from_settings(encoder, prints, s)
    from ytingest.models.segmentation import Segmenter
    from ytingest.speakers.diarize import SegmentationTagger

    segmenter = Segmenter(device=s.speaker_device, step_s=s.speaker_segmentation_step_s)
    return SegmentationTagger(
        segmenter,
        encoder,
        prints,
        threshold=s.speaker_threshold,
        margin=s.speaker_margin,
        cluster_distance=s.speaker_cluster_distance,
        split=s.speaker_split,
    )
