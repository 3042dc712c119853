"""Cross-file batched ASR on the bundled model: same words as per-file, exact per-file timelines."""

from __future__ import annotations

import numpy as np
import pytest

from tests.wer import MAX_MEAN_WER, wer
from ytingest.items import DecodedAudio, WindowResult
from ytingest.models.asr import WhisperTranscriber
from ytingest.ports import PreparingTranscriber
from ytingest.stages.transcribe import transcribe_group
from ytingest.testing import sample_episodes
from ytingest.testing.real_speech import REAL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cross() -> WhisperTranscriber:
    return WhisperTranscriber("bundled", device="cpu", batching="cross", batch_size=8)


def test_cross_file_batches_match_scripts_and_per_file_output(cross: WhisperTranscriber) -> None:
    """Chunks of six files share batches; each file keeps its own words, order and timestamps."""
    eps = sample_episodes()
    prepared = [cross.prepare(e.path) for e in eps]
    assert sum(len(p.chunks) for p in prepared) > len(eps)  # the long episode has several chunks
    together = cross.transcribe_prepared(prepared)
    alone = [cross.transcribe_prepared([p])[0] for p in prepared]
    texts = [" ".join(s.text for s in r.segments) for r in together]
    assert np.mean([wer(e.text, t) for e, t in zip(eps, texts, strict=True)]) <= MAX_MEAN_WER
    for ep, mixed, single in zip(eps, together, alone, strict=True):
        assert (
            wer(" ".join(s.text for s in single.segments), " ".join(s.text for s in mixed.segments)) <= 0.05
        )
        starts = [s.start for s in mixed.segments]
        assert starts == sorted(starts) and all(
            0 <= s.start <= s.end <= ep.duration + 0.05 for s in mixed.segments
        )
        assert [s.idx for s in mixed.segments] == list(range(len(mixed.segments)))
        assert mixed.audio_seconds == pytest.approx(ep.duration, abs=0.2)


def test_cross_file_matches_plain_transcribe_per_file(cross: WhisperTranscriber) -> None:
    """The batched path's words agree with WhisperModel.transcribe on the same file."""
    ep = next(e for e in sample_episodes() if e.id == "ep06-bread")
    plain = WhisperTranscriber("bundled", device="cpu", batching="off").transcribe(ep.path)
    batched = cross.transcribe(ep.path)
    joined = [" ".join(s.text for s in r.segments) for r in (plain, batched)]
    assert wer(joined[0], joined[1]) <= 0.15
    assert abs(batched.segments[-1].end - plain.segments[-1].end) <= 3.0


def test_group_hands_each_window_on_with_its_decoded_audio(cross: WhisperTranscriber) -> None:
    """transcribe_group hands each file's own decoded audio and words on to the speakers stage,
    which tags the speakers on that audio and moves the segments onto the video's timeline."""
    from ytingest.items import AudioFile, TranscribedWindow, VideoRef
    from ytingest.ports import Tagged
    from ytingest.stages.speakers import label_window

    eps = sample_episodes()[:3]
    seen: list[int] = []

    class Tagger:
        model = "fake"

        def tag(self, audio, rate, segments, *, window=0):  # type: ignore[no-untyped-def]
            seen.append(len(audio))
            return Tagged(segments)

    assert isinstance(cross, PreparingTranscriber)
    group = [DecodedAudio(AudioFile(VideoRef(e.id, ""), e.path, 1), cross.prepare(e.path)) for e in eps]
    outcomes = transcribe_group(cross, group)
    assert all(isinstance(o, TranscribedWindow) and o.segments for o in outcomes)
    results = [label_window(Tagger(), o) for o in outcomes if isinstance(o, TranscribedWindow)]  # type: ignore[arg-type]
    assert seen == [len(d.prepared.audio) for d in group if d.prepared is not None]
    assert all(isinstance(r, WindowResult) and r.segments for r in results)


def test_a_chunk_the_batched_pass_leaves_half_done_is_decoded_again(cross: WhisperTranscriber) -> None:
    """The real meeting clip tst00 (30 s of crosstalk, one VAD chunk): tiny.en's one batched pass
    stops after its first sentence (3.4 s). The rest of the chunk is decoded again (batched,
    greedy), so the segments run to the end of the speech and the words said later are there,
    with no repetition loop ("yeah, yeah, ..." to the end, what plain greedy decoding writes)."""
    clip = REAL / "tst00.mp3"
    before = cross.chunks_redone
    result = cross.transcribe_prepared([cross.prepare(clip)])[0]
    assert cross.chunks_redone == before + 1
    text = " ".join(s.text for s in result.segments).lower()
    assert "go around" in text and len(result.segments) >= 8
    assert text.count("yeah") <= 5
    assert result.segments[-1].end >= 25.0  # of 30 s, speech to the end
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts)


def test_chunks_the_batched_pass_covers_are_not_decoded_again(cross: WhisperTranscriber) -> None:
    """The espeak episodes are covered by their batched pass: nothing is redone for them."""
    before = cross.chunks_redone
    cross.transcribe_prepared([cross.prepare(e.path) for e in sample_episodes()])
    assert cross.chunks_redone == before
