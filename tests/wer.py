"""Word error rate against the sample scripts, shared by the ASR tests.

Threshold: tiny.en on espeak-ng's synthetic voices measured 0.07-0.28 per episode
(mean 0.16) on this CPU. 0.35 per episode and 0.25 on average leave room for int8
and thread-count differences, while a wrong model, truncated audio, swapped files
or lost segments all give 0.5 or more.
"""

from __future__ import annotations

import jiwer

MAX_EPISODE_WER = 0.35
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
