"""Regenerate the multi-speaker dialogue episodes and the enrolment clips (developer tool).

Each turn is spoken by its espeak-ng voice into its own WAV; the turns are joined with
short silences, so the exact span of every turn is known and written to
``samples/dialogue_truth.json`` (the ground truth for speaker attribution). The enrolment
clips use sentences that do not occur in the dialogues. Needs ``apt-get install espeak-ng``.

    python -m tests.support.make_dialogues
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from ytingest.testing.audio import encode_mp3

SAMPLES = Path(__file__).parent / "samples"
VOICES = SAMPLES / "voices"
GAP_S = 0.7
RATE = 22050


def speak(text: str, espeak: list[str], wav: Path) -> np.ndarray:
    """One utterance as int16 samples at 22.05 kHz (espeak-ng's rate; argument list, no shell)."""
    subprocess.run(["espeak-ng", *espeak, "-w", str(wav), text], check=True)
    with wave.open(str(wav)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def write_wav(samples: np.ndarray, path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype(np.int16).tobytes())


def main() -> None:
    spec = json.loads((SAMPLES / "dialogues.json").read_text())
    voices = spec["voices"]
    truth: dict[str, list[dict[str, object]]] = {}
    shutil.rmtree(VOICES, ignore_errors=True)
    VOICES.mkdir()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for ep in spec["episodes"]:
            gap = np.zeros(int(GAP_S * RATE), dtype=np.int16)
            parts, turns, t = [gap], [], GAP_S
            for i, (who, text) in enumerate(ep["turns"]):
                audio = speak(text, voices[who]["espeak"], work / f"{ep['id']}-{i}.wav")
                turns.append(
                    {
                        "speaker": who,
                        "start": round(t, 3),
                        "end": round(t + len(audio) / RATE, 3),
                        "text": text,
                    }
                )
                parts += [audio, gap]
                t += (len(audio) + len(gap)) / RATE
            write_wav(np.concatenate(parts), work / f"{ep['id']}.wav")
            encode_mp3(work / f"{ep['id']}.wav", SAMPLES / f"{ep['id']}.mp3", bitrate=24_000)
            truth[ep["id"]] = turns
        for name, sentences in spec["enrolment"].items():
            wavs = [
                speak(s, voices[name]["espeak"], work / f"enrol-{i}.wav") for i, s in enumerate(sentences)
            ]
            if voices[name]["enrol"] == "folder":
                (VOICES / name).mkdir()
                targets = [VOICES / name / f"clip{i + 1}.mp3" for i in range(len(wavs))]
            else:
                targets = [VOICES / f"{name}.mp3"]
                wavs = [np.concatenate(wavs)]
            for wav_samples, target in zip(wavs, targets, strict=True):
                write_wav(wav_samples, work / "clip.wav")
                encode_mp3(work / "clip.wav", target, bitrate=24_000)
    (SAMPLES / "dialogue_truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    for path in sorted(SAMPLES.rglob("*.mp3")):
        if path.name.startswith("dlg") or VOICES in path.parents:
            print(path.relative_to(SAMPLES), path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
