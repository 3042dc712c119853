"""The shipped segmentation model (pyannote segmentation-3.0, ONNX) on real speech, against the
reference turns: overlapped speech in the real four-person meeting, and who spoke when in the
real two-person clip with nobody enrolled. No ASR: the diarization alone (frame level)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from faster_whisper import decode_audio

from bench.der_frames import oracle_frames
from tests.support.diarization import der, overlap_scores, rows
from ytingest.models.ge2e import Ge2eEncoder
from ytingest.models.segmentation import Segmenter
from ytingest.speakers.diarize import SegmentationTagger
from ytingest.testing.real_speech import REAL, RTTM
from ytingest.testing.rttm import read_rttm
from ytingest.testing.two_voices import RTTM as TWO_VOICES_RTTM

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tagger() -> SegmentationTagger:
    """Nobody enrolled; the shipped defaults for the thresholds."""
    return SegmentationTagger(
        Segmenter(device="cpu"), Ge2eEncoder("cpu"), [], threshold=0.8, margin=0.05, cluster_distance=0.3
    )


def audio(name: str) -> npt.NDArray[np.float32]:
    """A bundled real clip at 16 kHz mono."""
    return np.asarray(decode_audio(str(REAL / f"{name}.mp3"), sampling_rate=16_000), dtype=np.float32)


def test_overlapped_speech_in_the_real_meeting_is_found(tagger: SegmentationTagger) -> None:
    """tst00 (four people, 18 of its 30 s overlapped): at least half the overlapped time is
    flagged, and at least 80% of what is flagged is overlapped in the reference."""
    frames = tagger.diarize(audio("tst00"))
    flagged = [(a, b, True) for a, b, name in frames.rows() if name == "overlap"]
    precision, recall = overlap_scores(rows(read_rttm(RTTM)["tst00"]), flagged)
    assert recall >= 0.5 and precision >= 0.8, (precision, recall)


def test_the_real_two_person_clip_gets_two_voices_and_a_low_der(tagger: SegmentationTagger) -> None:
    """two_voices (a woman and a man of the meeting taking turns), nobody enrolled: two voices,
    DER ≤ 0.1 (collar 0.25 s) against its reference turns."""
    found = [(a, b, name) for a, b, name in tagger.diarize(audio("two_voices")).rows() if name != "overlap"]
    assert len({name for *_, name in found}) == 2, found
    result = der(rows(read_rttm(TWO_VOICES_RTTM)["two_voices"]), found, collar=0.25)
    assert result.der <= 0.1, result


def test_the_meeting_misses_no_more_speech_than_with_perfect_labels(tagger: SegmentationTagger) -> None:
    """tst00: the diarization misses at most 2 points more of the reference speech than the same
    segmentation with oracle labels (each chunk's local speakers given their reference speakers,
    the same aggregation): what it misses is the model's speaker count, not our labelling."""
    clip, reference = audio("tst00"), rows(read_rttm(RTTM)["tst00"])
    found = [(a, b, name) for a, b, name in tagger.diarize(clip).rows() if name != "overlap"]
    ours = der(reference, found, collar=0.25)
    oracle = oracle_frames(tagger.segmenter.segment(clip), reference)
    assert ours.missed / ours.total <= oracle["missed"] + 0.02, (ours, oracle)
