"""Word error rate against the sample scripts, shared by the ASR tests.

Threshold: tiny.en on espeak-ng's synthetic voices measured 0.07-0.28 per episode
(mean 0.16) on an earlier machine. On an AVX2-only AMD EPYC (2026-11-28) int8 gave
0.09-0.36 (mean 0.22; ep01 0.358: "vector databases" heard as "the day the basis"), and
float32 0.26 on that same ep01: the int8 kernels differ by CPU. 0.40 per episode and 0.25
on average leave room for that, while a wrong model, truncated audio, swapped files or
lost segments all give 0.5 or more.
"""

from __future__ import annotations

import jiwer

MAX_EPISODE_WER = 0.40
MAX_MEAN_WER = 0.25

_NORMALISE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def wer(reference: str, hypothesis: str) -> float:
    return float(
        jiwer.wer(reference, hypothesis, reference_transform=_NORMALISE, hypothesis_transform=_NORMALISE)
    )
