"""Speaker identification on the dialogue episodes: attribution accuracy, cost next to ASR, threshold.

    python -m bench.speakers            # prints a report, writes bench/results/speakers.json

For the same decoded files, in one process: (a) faster-whisper ASR time, (b) speaker-stage time
(windows → GE2E embeddings → clustering → matching), and (b)/(a). Then the similarity of every
cluster centroid to the voiceprints, split into "same speaker" and "someone else", which is what
SPEAKER_THRESHOLD must separate, and a sweep of threshold × cluster distance.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from ytingest.config import Settings
from ytingest.models.asr import SAMPLE_RATE, AsrResult, WhisperTranscriber
from ytingest.models.ge2e import Ge2eEncoder
from ytingest.speakers.cluster import UnknownSpeakers, centroids, cluster
from ytingest.speakers.tagger import VoiceTagger, windows
from ytingest.speakers.voices import Voiceprint, embed_voice, scan
from ytingest.testing.dialogues import VOICES_DIR, dialogue_episodes, dialogue_truth, score, true_speaker

RESULTS = Path(__file__).parent / "results"


def tag_all(
    enc: Ge2eEncoder, prints: list[Voiceprint], asr: dict[str, AsrResult], threshold: float, distance: float
) -> tuple[dict[str, list[tuple[float, float, str | None]]], float]:
    """Tag every episode with fresh anonymous labels; rows per episode and seconds spent tagging."""
    tagger = VoiceTagger(
        enc, prints, UnknownSpeakers([], threshold), threshold=threshold, cluster_distance=distance
    )
    rows, spent = {}, 0.0
    for ep_id, r in asr.items():
        t0 = time.perf_counter()
        segs = tagger.tag(r.audio, SAMPLE_RATE, r.segments)
        spent += time.perf_counter() - t0
        rows[ep_id] = [(s.start, s.end, s.speaker) for s in segs]
    return rows, spent


def centroid_similarities(
    enc: Ge2eEncoder, prints: list[Voiceprint], asr: dict[str, AsrResult], distance: float
) -> tuple[list[float], list[float]]:
    """Cosine of each cluster centroid to its own speaker's voiceprint, and to everyone else's."""
    truth, names = dialogue_truth(), [p.name for p in prints]
    matrix = np.stack([p.vector for p in prints])
    same, other = [], []
    for ep_id, r in asr.items():
        wins = windows(r.segments)
        vecs = enc.embed([r.audio[int(w.start * SAMPLE_RATE) : int(w.end * SAMPLE_RATE)] for w in wins])
        labels = cluster(vecs, distance)
        cents = centroids(vecs, labels, [w.end - w.start for w in wins])
        for c, cent in enumerate(cents):
            members = [w for w, lab in zip(wins, labels, strict=True) if lab == c]
            whos = [true_speaker(truth[ep_id], w.start, w.end) for w in members]
            who = max(set(whos), key=whos.count)
            if whos.count(who) < 0.8 * len(whos):
                continue  # a mixed cluster (windows across a turn change) says nothing about the threshold
            for name, sim in zip(names, matrix @ cent, strict=True):
                (same if name == who else other).append(float(sim))
    return same, other


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.speakers")
    parser.add_argument("--repeat", type=int, default=2, help="timed passes (the first pass warms up)")
    args = parser.parse_args()
    s = Settings()
    asr_model = WhisperTranscriber("bundled", device="cpu")
    enc = Ge2eEncoder("cpu")
    prints = [vp for src in scan(VOICES_DIR) if (vp := embed_voice(enc, VOICES_DIR, src)[0]) is not None]
    episodes = dialogue_episodes()
    asr: dict[str, AsrResult] = {}
    asr_s = tag_s = 0.0
    for rep in range(args.repeat + 1):
        t0 = time.perf_counter()
        asr = {ep.id: asr_model.transcribe(ep.path) for ep in episodes}
        elapsed = time.perf_counter() - t0
        rows, spent = tag_all(enc, prints, asr, s.speaker_threshold, s.speaker_cluster_distance)
        if rep > 0:
            asr_s, tag_s = asr_s + elapsed, tag_s + spent
    result = score(rows)
    same, other = centroid_similarities(enc, prints, asr, s.speaker_cluster_distance)
    sweep = {}
    for distance in (0.15, 0.2, 0.25, 0.3, 0.35):
        for threshold in (0.7, 0.75, 0.8, 0.85, 0.9):
            a = score(tag_all(enc, prints, asr, threshold, distance)[0])
            sweep[f"d={distance} t={threshold}"] = (round(a.accuracy, 3), round(a.unknown_accuracy, 3))
    audio_s = sum(r.audio_seconds for r in asr.values())
    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "episodes": len(episodes),
        "audio_seconds": round(audio_s, 1),
        "segments": sum(len(r.segments) for r in asr.values()),
        "threshold": s.speaker_threshold,
        "cluster_distance": s.speaker_cluster_distance,
        "accuracy_enrolled": round(result.accuracy, 3),
        "enrolled_segments": f"{result.enrolled_correct}/{result.enrolled_total}",
        "unenrolled_kept_unknown": f"{result.unknown_correct}/{result.unknown_total}",
        "unknown_labels": sorted(result.unknown_labels),
        "asr_seconds": round(asr_s / args.repeat, 3),
        "speaker_seconds": round(tag_s / args.repeat, 3),
        "speaker_cost_fraction_of_asr": round(tag_s / asr_s, 3),
        "centroid_sim_same_speaker_min": round(min(same), 3),
        "centroid_sim_other_speaker_max": round(max(other), 3),
        "sweep_accuracy_enrolled_unknown": sweep,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "sweep_accuracy_enrolled_unknown"}, indent=1))
    print("sweep (cluster distance d, threshold t): accuracy on enrolled voices / unenrolled kept unknown")
    for key, (acc, unk) in sweep.items():
        print(f"  {key:14s} {acc:.3f} / {unk:.3f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "speakers.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
