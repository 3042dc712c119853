"""Speaker attribution on real and synthetic speech, both SPEAKER_DIARIZATION methods side by side
(``windows``: the encoder over short windows of the ASR's speech; ``segmentation``: pyannote's
segmentation-3.0 finds local speakers and overlap, the encoder tells them apart): accuracy, DER
with and without splitting at turns, the cost next to ASR, and the threshold sweep the defaults
were chosen from.

    python -m bench.speakers            # prints a report, writes bench/results/speakers.json

DER is pyannote.metrics' with a 0.25 s collar (``der_*``). Rows are what is stored: one speaker
per ASR row, scored where its words are, so speech the ASR missed is missed speech and a second
voice over the first is missed too. Hence also: ``covered_der`` (the reference cut to the time the
ASR's words cover), ``asr_missed`` (the share of reference speech outside it), ``floor_one_label``
(the DER a perfect one-speaker-per-moment labelling would still have: overlapped speech), and for
``segmentation`` the diarization alone, before the ASR (``frames``: frame-level voices, up to two
at once, and its overlap detection).

In one process, on the same audio:
- real meeting (AMI, four real speakers): voiceprints from ``tst00``'s single-speaker stretches
  (reference turns), identification in ``tst01``; duration-weighted attribution accuracy and DER
  (pyannote.metrics) against the RTTM, split at turns on and off;
- a real two-person episode (``two_voices``, a woman and a man of that meeting taking turns; no
  enrolment): DER and accuracy after the optimal label mapping, and how many labels it got;
- the meeting without enrolment (``tst00``, ``tst01``): DER after the optimal mapping;
- synthetic dialogues (espeak voices enrolled from ``samples/voices``): segment accuracy;
- cost: the ASR model pass with word timestamps vs without (interleaved), and the speaker stage;
- window cosines to the voiceprints, same speaker vs others (what SPEAKER_THRESHOLD separates).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.der_frames import enrolled_split, oracle_frames, two_voice_rows
from tests.support.diarization import attribution_accuracy, der, mapped_accuracy, overlap_scores
from ytingest.config import Settings
from ytingest.items import SAMPLE_RATE, Segment, Voiceprint
from ytingest.models.asr import AsrResult, WhisperTranscriber
from ytingest.models.ge2e import Ge2eEncoder
from ytingest.models.segmentation import Segmenter
from ytingest.ports import SpeakerTagger
from ytingest.speakers.clustering import name_voices, unit
from ytingest.speakers.diarize import SegmentationTagger
from ytingest.speakers.setup import tagger_for
from ytingest.speakers.tagger import VoiceTagger
from ytingest.speakers.turns import Span, speech_spans, windows
from ytingest.speakers.voices import embed_voice, scan
from ytingest.testing.dialogues import VOICES_DIR, dialogue_episodes, dialogue_truth, score
from ytingest.testing.real_speech import REAL, RTTM
from ytingest.testing.rttm import read_rttm
from ytingest.testing.two_voices import single_speaker_stretches, solo_voiceprints, two_voices_episodes

RESULTS = Path(__file__).parent / "results"
Rows = list[tuple[float, float, str]]


def tag(tagger: SpeakerTagger, r: AsrResult) -> tuple[Rows, list[bool]]:
    """Rows (start, end, label) and their overlap flags; anonymous keys named as the store would."""
    tagged = tagger.tag(r.audio, SAMPLE_RATE, r.segments)
    labels, _ = name_voices([], tagged.voices, 0.8, 1)
    rows, flags = [], []
    for s in tagged.segments:  # scored where the words are: a row's silences are not its speech
        for span in speech_spans([s]):
            rows.append((span.start, span.end, labels.get(s.speaker or "", s.speaker or "")))
            flags.append(s.overlap)
    return rows, flags


def as_ref(turns: Sequence[Any]) -> Rows:
    return [(t.start, t.end, t.speaker) for t in turns]


def covered(reference: Rows, spans: Sequence[Span]) -> Rows:
    """The reference cut to the time ``spans`` (the ASR's words) cover."""
    return [
        (max(a, sp.start), min(b, sp.end), who)
        for a, b, who in reference
        for sp in spans
        if min(b, sp.end) > max(a, sp.start)
    ]


def spans_of(rows: Rows) -> list[Span]:
    return [Span(a, b) for a, b, _ in rows]


def floor_one_label(reference: Rows, *, step: float = 0.01) -> float:
    """The DER (no collar) that one speaker per moment leaves at best: every voice beyond the first."""
    end = max((b for _, b, _ in reference), default=0.0)
    active = np.zeros(int(end / step) + 1)
    for a, b, _ in reference:
        active[int(a / step) : int(b / step)] += 1
    return round(float(np.maximum(active - 1, 0).sum() / max(active.sum(), 1e-9)), 3)


def unenrolled(rows: Rows, reference: Rows, r: AsrResult) -> dict[str, Any]:
    """DER (collar 0.25) of one clip's rows, also where the ASR heard speech, and what it missed."""
    spans = speech_spans(r.segments)
    cut = covered(reference, spans)
    total = sum(b - a for a, b, _ in reference)
    return {
        "der": round(der(reference, rows, collar=0.25).der, 3),
        "covered_der": round(der(cut, rows, collar=0.25).der, 3) if cut else None,
        "asr_missed": round(1 - sum(b - a for a, b, _ in cut) / total, 3) if total else None,
        "floor_one_label": floor_one_label(reference),
        "labels": len({lab for *_, lab in rows}),
    }


def frames_only(tagger: SegmentationTagger, r: AsrResult, reference: Rows) -> dict[str, Any]:
    """The segmentation method's diarization alone (no ASR): frame-level DER (collar 0.25) and its
    parts (shares of the reference speech), its overlap detection against the reference, the
    voices it found, and the same with oracle labels (``der_frames.oracle_frames``)."""
    found = tagger.diarize(r.audio).rows()
    voices = [(a, b, who) for a, b, who in found if who != "overlap"]
    prec, rec = overlap_scores(reference, [(a, b, True) for a, b, who in found if who == "overlap"])
    d = der(reference, voices, collar=0.25)
    share = lambda x: round(x / d.total, 3) if d.total else None  # noqa: E731
    return {
        "der": round(d.der, 3),
        "missed": share(d.missed),
        "false_alarm": share(d.false_alarm),
        "confusion": share(d.confusion),
        "voices": len({who for *_, who in voices}),
        "overlap_precision": round(prec, 3),
        "overlap_recall": round(rec, 3),
        "oracle_labels": oracle_frames(tagger.segmenter.segment(r.audio), reference),
    }


def evaluate(
    enc: Ge2eEncoder,
    asr: dict[str, AsrResult],
    refs: dict[str, Any],
    prints: list[Voiceprint],
    synth_prints: list[Voiceprint],
    synth_asr: dict[str, AsrResult],
    *,
    threshold: float,
    margin: float,
    distance: float,
    split: bool,
    method: str = "windows",
) -> dict[str, Any]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        speaker_diarization=method,
        speaker_threshold=threshold,
        speaker_margin=margin,
        speaker_cluster_distance=distance,
        speaker_split=split,
    )

    def tagger(p: list[Voiceprint]) -> SpeakerTagger:
        return tagger_for(settings, enc, p)

    rows, flags = tag(tagger(prints), asr["tst01"])
    ref01 = as_ref(refs["tst01"])
    out: dict[str, Any] = {
        "meeting_accuracy": round(attribution_accuracy(ref01, rows), 3),
        "meeting_accuracy_scored_s": round(sum(b - a for a, b, _ in covered(ref01, spans_of(rows))), 2),
        "meeting_der": round(der(ref01, rows, collar=0.25).der, 3),
    }
    anonymous = tagger([])
    clips = ("tst00", "tst01", *sorted(k for k in asr if k.startswith("two")))
    anon = {k: tag(anonymous, asr[k]) for k in clips}
    out["no_enrolment"] = {k: unenrolled(anon[k][0], as_ref(refs[k]), asr[k]) for k in clips}
    for k in clips:
        if k.startswith("two"):
            out["no_enrolment"][k]["mapped_accuracy"] = round(mapped_accuracy(as_ref(refs[k]), anon[k][0]), 3)
    if isinstance(anonymous, SegmentationTagger):
        out["frames"] = {k: frames_only(anonymous, asr[k], as_ref(refs[k])) for k in clips}
        out["no_enrolment_two_voice_rows"] = {
            k: unenrolled(two_voice_rows(anonymous, asr[k]), as_ref(refs[k]), asr[k]) for k in clips
        }
    prec, rec = overlap_scores(as_ref(refs["tst00"]), [r for r, f in zip(*anon["tst00"], strict=True) if f])
    out["overlap_tst00_rows"] = {"precision": round(prec, 3), "recall": round(rec, 3)}
    synth = {ep: tag(tagger(synth_prints), r)[0] for ep, r in synth_asr.items()}
    a = score(synth)
    out["synthetic_accuracy"] = round(a.accuracy, 3)
    out["synthetic_unenrolled_kept_unknown"] = round(a.unknown_accuracy, 3)
    truth = dialogue_truth()
    joined = {
        ep: tag(tagger(synth_prints), replace(r, segments=interrupted(r.segments)))[0]
        for ep, r in synth_asr.items()
    }
    out["synthetic_interrupted_der"] = round(
        der(
            [x for ep in joined for x in shifted(as_ref(truth[ep]), ep)],
            [x for ep, rows in joined.items() for x in shifted(rows, ep)],
            collar=0.25,
        ).der,
        3,
    )
    anon_synth = {ep: tag(anonymous, r)[0] for ep, r in synth_asr.items()}
    out["synthetic_no_enrolment_der"] = {
        ep: round(der(as_ref(truth[ep]), rows, collar=0.25).der, 3) for ep, rows in anon_synth.items()
    }
    self_rows, _ = tag(tagger(prints), asr["tst00"])
    ref00 = as_ref(refs["tst00"])
    out["meeting_tst00_self_enrolled_der"] = round(der(ref00, self_rows, collar=0.25).der, 3)
    out["meeting_tst00_self_enrolled_accuracy"] = round(attribution_accuracy(ref00, self_rows), 3)
    solo = [(t.start, t.end, "solo") for t in single_speaker_stretches({"tst00": refs["tst00"]})]
    out["meeting_tst00_self_enrolled_split"] = enrolled_split(ref00, self_rows, solo)
    return out


def interrupted(segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """Every two consecutive segments joined into one (words, times and text kept): what a model
    that does not break its segments at a change of voice gives, so a segment spans a turn."""
    out = []
    for a, b in zip(segments[::2], segments[1::2], strict=False):
        out.append(Segment(len(out), a.start, b.end, f"{a.text} {b.text}", words=a.words + b.words))
    if len(segments) % 2:
        out.append(replace(segments[-1], idx=len(out)))
    return tuple(out)


def shifted(rows: Rows, episode: str) -> Rows:
    """Rows of several episodes on one timeline (1000 s apart), so one DER covers them all."""
    base = 1000.0 * sorted(dialogue_truth()).index(episode)
    return [(a + base, b + base, who) for a, b, who in rows]


def window_cosines(
    enc: Ge2eEncoder, asr: dict[str, AsrResult], refs: dict[str, Any], prints: list[Voiceprint]
) -> dict[str, Any]:
    """Cosine of each single-speaker speech window of tst01 to its own voiceprint and to the others."""
    names = [p.name for p in prints]
    matrix = unit(np.stack([p.vector for p in prints]))
    same, other = [], []
    r = asr["tst01"]
    stretches = [(t.start, t.end, t.speaker) for t in single_speaker_stretches({"tst01": refs["tst01"]})]
    wins = windows(speech_spans(r.segments), r.audio_seconds)
    for w in wins:
        who = [s for a, b, s in stretches if a <= w.start and w.end <= b]
        if not who or who[0] not in names:
            continue
        v = unit(enc.embed([r.audio[int(w.start * SAMPLE_RATE) : int(w.end * SAMPLE_RATE)]]))[0]
        sims = matrix @ v
        for name, sim in zip(names, sims, strict=True):
            (same if name == who[0] else other).append(float(sim))
    q = lambda xs, p: round(float(np.percentile(xs, p)), 3) if xs else None  # noqa: E731
    return {
        "same": {"n": len(same), "p10": q(same, 10), "median": q(same, 50)},
        "other": {"n": len(other), "median": q(other, 50), "p90": q(other, 90), "max": q(other, 100)},
    }


def timed_asr(
    plain: WhisperTranscriber, words: WhisperTranscriber, paths: dict[str, Path], repeat: int
) -> tuple[dict[str, AsrResult], float, float]:
    """The model pass (``transcribe_prepared``, all files in one cross-file batch) without and with
    word timestamps, interleaved ``repeat`` times after a warm-up of each, so background load
    hits both alike; decoding and VAD (the same for both) are done once, outside the timing.
    Returns the results with words and the mean seconds per pass of each."""
    prepared = [plain.prepare(p) for p in paths.values()]
    spent = {id(plain): 0.0, id(words): 0.0}
    results: list[AsrResult] = []
    for rep in range(repeat + 1):
        for tr in (plain, words):
            t0 = time.perf_counter()
            out = tr.transcribe_prepared(prepared)
            if rep:
                spent[id(tr)] += time.perf_counter() - t0
            if tr is words:
                results = out
    return dict(zip(paths, results, strict=True)), spent[id(plain)] / repeat, spent[id(words)] / repeat


def stage_cost(
    enc: Ge2eEncoder, prints: list[Voiceprint], results: list[AsrResult], repeat: int
) -> dict[str, Any]:
    """Wall and CPU (this process) of each method's tagging of every clip, and of the
    segmentation pass alone, interleaved ``repeat`` times after a warm-up; per audio hour too."""
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    segmenter = Segmenter(device="cpu", step_s=s.speaker_segmentation_step_s)
    jobs: dict[str, Any] = {
        "windows": lambda r: VoiceTagger.from_settings(enc, prints, s).tag(r.audio, SAMPLE_RATE, r.segments),
        "segmentation": lambda r: SegmentationTagger(
            segmenter,
            enc,
            prints,
            threshold=s.speaker_threshold,
            margin=s.speaker_margin,
            cluster_distance=s.speaker_cluster_distance,
        ).tag(r.audio, SAMPLE_RATE, r.segments),
        "segmentation_pass_only": lambda r: segmenter.segment(r.audio),
    }
    wall: dict[str, float] = dict.fromkeys(jobs, 0.0)
    cpu: dict[str, float] = dict.fromkeys(jobs, 0.0)
    for rep in range(repeat + 1):
        for name, job in jobs.items():
            w0, c0 = time.perf_counter(), time.process_time()
            for r in results:
                job(r)
            if rep:
                wall[name] += time.perf_counter() - w0
                cpu[name] += time.process_time() - c0
    audio_s = sum(r.audio_seconds for r in results)
    hours = audio_s / 3600
    out: dict[str, Any] = {"audio_seconds": round(audio_s, 1)}
    for name in jobs:
        out[name] = {
            "seconds": round(wall[name] / repeat, 3),
            "wall_s_per_audio_hour": round(wall[name] / repeat / hours, 1),
            "cpu_s_per_audio_hour": round(cpu[name] / repeat / hours, 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.speakers")
    parser.add_argument("--repeat", type=int, default=2, help="timed ASR passes (after one warm-up)")
    parser.add_argument("--no-sweep", action="store_true", help="only the defaults")
    args = parser.parse_args()
    s = Settings()
    enc = Ge2eEncoder("cpu")
    refs: dict[str, Any] = dict(read_rttm(RTTM))
    paths = {k: REAL / f"{k}.mp3" for k in ("tst00", "tst01")}
    for ep in two_voices_episodes():
        paths[ep.id] = ep.path
    refs.update(read_rttm(REAL / "two_voices.rttm"))
    synth_paths = {ep.id: ep.path for ep in dialogue_episodes()}
    plain = WhisperTranscriber("bundled", device="cpu", batching="cross")
    words = WhisperTranscriber("bundled", device="cpu", batching="cross", word_timestamps=True)
    asr_all, plain_s, words_s = timed_asr(plain, words, {**paths, **synth_paths}, args.repeat)
    asr = {k: asr_all[k] for k in paths}
    synth_asr = {k: asr_all[k] for k in synth_paths}
    audio_s = sum(r.audio_seconds for r in asr_all.values())
    ref00 = refs["tst00"]
    prints = solo_voiceprints(enc, asr["tst00"].audio, "tst00", ref00)
    synth_prints = [
        vp for src in scan(VOICES_DIR) if (vp := embed_voice(enc, VOICES_DIR, src)[0]) is not None
    ]
    defaults = dict(
        threshold=s.speaker_threshold, margin=s.speaker_margin, distance=s.speaker_cluster_distance
    )
    cost = stage_cost(enc, prints, list(asr_all.values()), args.repeat)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "audio_seconds": round(audio_s, 1),
        "enrolled_from_tst00_seconds": {
            who: round(
                sum(t.duration for t in single_speaker_stretches({"tst00": ref00}) if t.speaker == who), 2
            )
            for who in sorted({t.speaker for t in ref00})
        },
        "defaults": defaults,
        **{
            f"{method}_split_{'on' if split else 'off'}": evaluate(
                enc, asr, refs, prints, synth_prints, synth_asr, split=split, method=method, **defaults
            )
            for method in ("segmentation", "windows")
            for split in (True, False)
        },
        "asr_seconds_plain": round(plain_s, 3),
        "asr_seconds_with_words": round(words_s, 3),
        "word_timestamps_cost": round(words_s / plain_s - 1, 3),
        "cost": cost,
        "speaker_stage_fraction_of_asr": {
            k: round(v["seconds"] / words_s, 3) for k, v in cost.items() if k != "audio_seconds"
        },
        "window_cosines_tst01": window_cosines(enc, asr, refs, prints),
    }
    print(json.dumps(report, indent=1))
    if not args.no_sweep:
        sweep = {}
        for threshold in (0.7, 0.75, 0.8, 0.85, 0.9):
            for margin in (0.0, 0.05):
                for distance in (0.15, 0.2, 0.25, 0.3, 0.35):
                    key = f"t={threshold} m={margin} d={distance}"
                    e = evaluate(
                        enc,
                        asr,
                        refs,
                        prints,
                        synth_prints,
                        synth_asr,
                        threshold=threshold,
                        margin=margin,
                        distance=distance,
                        split=True,
                    )
                    sweep[key] = e
                    print(key, json.dumps({k: v for k, v in e.items() if k != "overlap_tst00"}))
        report["sweep_split_on"] = sweep
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "speakers.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
