"""Where speech is, the short windows the speaker encoder hears, and splitting segments at turns.

Pure time logic, no models: ``speech_spans`` (from the words, else the segments), ``windows``
(WINDOW_S long, HOP_S apart, only over speech), and ``split_at_turns`` (a segment whose words
change speaker becomes one piece per run of words, cut at the word boundary).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ytingest.items import Segment, Word

WINDOW_S = 1.2  # what one speaker embedding hears (bench/speakers.py: 1.2/0.4 beat 1.5/0.75 on real speech)
HOP_S = 0.4  # between window starts: every moment of speech is heard by three windows
MIN_WINDOW_S = 0.5  # a shorter stretch of speech is widened to this (GE2E needs some frames)
JOIN_GAP_S = 0.5  # words closer than this are one stretch of speech
MIN_TURN_S = 0.6  # a run of words shorter than this takes its neighbours' speaker (one-word flips)


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time, in seconds."""

    start: float
    end: float


def speech_spans(segments: Sequence[Segment], *, join_gap: float = JOIN_GAP_S) -> list[Span]:
    """The stretches where someone speaks: the words' times joined across short gaps, or the
    segments' own times for a segment without words. Silence between them is never embedded."""
    raw = sorted(
        (w.start, w.end)
        for s in segments
        for w in (s.words or (Word(s.start, s.end, s.text),))
        if w.end > w.start
    )
    spans: list[Span] = []
    for start, end in raw:
        if spans and start - spans[-1].end <= join_gap:
            spans[-1] = Span(spans[-1].start, max(spans[-1].end, end))
        else:
            spans.append(Span(start, end))
    return spans


class Windows(list[Span]):
    """The windows of one stretch of audio, sorted by start, with their starts kept for bisection."""

    def __init__(self, spans: Sequence[Span]) -> None:
        super().__init__(sorted(spans, key=lambda w: w.start))
        self.starts = [w.start for w in self]

    def touching(self, span: Span | Word | Segment) -> range:
        """Indexes of the windows (none longer than WINDOW_S) that may overlap ``span``: a
        bisection, so labelling a long window of audio stays linear in its length."""
        return range(bisect_left(self.starts, span.start - WINDOW_S), bisect_right(self.starts, span.end))


def windows(spans: Sequence[Span], audio_s: float, *, size: float = WINDOW_S, hop: float = HOP_S) -> Windows:
    """``size``-long windows every ``hop`` over each span (the last one ends with the span); a span
    shorter than ``size`` is one window, widened to MIN_WINDOW_S inside the audio when shorter."""
    out: list[Span] = []
    for sp in spans:
        length = sp.end - sp.start
        if length <= size:
            pad = max(0.0, MIN_WINDOW_S - length) / 2
            start = max(0.0, min(sp.start - pad, audio_s - MIN_WINDOW_S))
            out.append(Span(start, max(start, min(audio_s, sp.end + pad))))
            continue
        n = int((length - size) // hop) + 1
        starts = [sp.start + k * hop for k in range(n)]
        if starts[-1] + size < sp.end - 1e-6:
            starts.append(sp.end - size)
        out += [Span(s, s + size) for s in starts]
    return Windows(out)


def overlap(a: Span | Word | Segment, b: Span) -> float:
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


def vote(span: Span | Word | Segment, wins: Windows, labels: Sequence[int]) -> int | None:
    """The label of the windows covering most of ``span``, each window's share weighted down
    towards its edges (a window speaks best for its middle); None if there are no windows; a word
    that falls between windows takes the nearest window's label."""
    time: dict[int, float] = defaultdict(float)
    mid = (span.start + span.end) / 2
    for i in wins.touching(span):
        w = wins[i]
        if (o := overlap(span, w)) > 0:
            length = max(w.end - w.start, 1e-6)
            time[labels[i]] += o * max(0.05, 1 - abs(mid - (w.start + w.end) / 2) / length)
    if time:
        return max(time, key=lambda k: time[k])
    if not wins:
        return None
    nearest = min(range(len(wins)), key=lambda i: abs((wins[i].start + wins[i].end) / 2 - mid))
    return labels[nearest]


def smooth(words: Sequence[Word], labels: list[int], *, min_turn: float = MIN_TURN_S) -> list[int]:
    """Runs of words shorter than ``min_turn`` take the label of the longer neighbouring run, so a
    turn is never a single misheard word; repeated until no short run is left between others."""
    labels = list(labels)
    while True:
        runs = _runs(labels)
        if len(runs) < 2:
            return labels
        lengths = [words[b - 1].end - words[a].start for a, b in runs]
        short = [k for k, length in enumerate(lengths) if length < min_turn]
        if not short:
            return labels
        k = min(short, key=lambda i: lengths[i])
        neighbours = [j for j in (k - 1, k + 1) if 0 <= j < len(runs)]
        j = max(neighbours, key=lambda i: lengths[i])
        a, b = runs[k]
        labels[a:b] = [labels[runs[j][0]]] * (b - a)


def _runs(labels: Sequence[int]) -> list[tuple[int, int]]:
    """[start, end) index ranges of equal consecutive labels."""
    out: list[tuple[int, int]] = []
    for i, label in enumerate(labels):
        if out and labels[out[-1][0]] == label:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of one segment's words (or the whole segment) said by one speaker."""

    segment: Segment
    label: int


def split_at_turns(seg: Segment, wins: Windows, labels: Sequence[int], *, split: bool) -> list[Piece]:
    """The segment as one piece per speaker turn inside it (cut at the first word of each new
    turn), or, without words or with ``split`` off, whole with its majority label."""
    return split_by_vote(seg, lambda span: vote(span, wins, labels), split=split)


def split_by_vote(seg: Segment, voter: Callable[[Segment | Word], int | None], *, split: bool) -> list[Piece]:
    """``split_at_turns`` with any ``voter`` (the label of a stretch of time, None: no label):
    each word takes its vote, short runs are smoothed away, and the segment is cut where the
    label changes."""
    whole = voter(seg)
    if whole is None:
        return []
    if not split or len(seg.words) < 2:
        return [Piece(seg, whole)]
    per_word = [voter(w) for w in seg.words]
    word_labels = smooth(seg.words, [whole if v is None else v for v in per_word])
    runs = _runs(word_labels)
    if len(runs) == 1:
        return [Piece(seg, word_labels[0])]
    pieces = []
    for k, (a, b) in enumerate(runs):
        words = seg.words[a:b]
        start = seg.start if k == 0 else words[0].start
        end = seg.end if k == len(runs) - 1 else seg.words[b].start
        text = "".join(w.text for w in words).strip()
        part = Segment(
            seg.idx, round(start, 3), round(max(end, start), 3), text, seg.avg_logprob, words=words
        )
        pieces.append(Piece(part, word_labels[a]))
    return pieces
