"""`speakers name` and `speakers merge`: make an anonymous voice an enrolled one, or two labels of
one person one label, relabelling the stored segments without transcribing again (database only).

Anonymous voices belong to a channel; an edit of one holds that channel's labelling lock, so a
store running at the same time cannot give the voice a label meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ytingest.db.database import Database
from ytingest.db.voiceprints import UNKNOWN_LABEL, Voice, VoiceEdit
from ytingest.errors import ConfigError
from ytingest.speakers.clustering import unit

LIST_HINT = "`ytingest speakers` lists the voices"


@dataclass(frozen=True, slots=True)
class NameReport:
    """What one edit did: ``old``'s segments (of ``channel``; None: every channel) became ``new``'s."""

    old: str
    new: str
    segments: int
    videos: int
    channel: str | None = None
    note: str = ""  # how the voices were combined, when they were

    def line(self) -> str:
        """``unknown-3 → Jane Doe: 14 segments in 2 videos`` (+ the note)."""
        videos = "1 video" if self.videos == 1 else f"{self.videos} videos"
        segments = "1 segment" if self.segments == 1 else f"{self.segments} segments"
        note = f" ({self.note})" if self.note else ""
        return f"{self.old} → {self.new}: {segments} in {videos}{note}"


def _mean(a: Voice, b: Voice) -> npt.NDArray[np.float32]:
    """The normalised mean of two voices, weighted by their seconds of speech (equal weights when
    either is an enrolled voiceprint, which keeps no weight)."""
    wa, wb = (a.weight, b.weight) if a.weight is not None and b.weight is not None else (1.0, 1.0)
    mean: npt.NDArray[np.float32] = unit((unit(a.vector) * wa + unit(b.vector) * wb)[None, :])[0]
    return mean


def _same_model(a: Voice, b: Voice) -> None:
    if a.model != b.model:
        raise ConfigError(
            f"{a.label} was made with speaker model {a.model} and {b.label} with {b.model}:"
            " voices of different models cannot be combined"
        )


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or name.startswith("?") or UNKNOWN_LABEL.match(name):
        raise ConfigError(f"{name!r} cannot name a speaker: it is empty or looks like an anonymous label")
    return name


async def _channel_of(db: Database, label: str, channel: str | None) -> str:
    """The channel whose anonymous voice ``label`` is meant: ``channel``, or the only one with it."""
    if channel is not None:
        return channel
    found = await db.unknown_channels(label)
    if not found:
        raise ConfigError(f"no anonymous voice called {label} ({LIST_HINT})")
    if len(found) > 1:
        shown = ", ".join(c or "(videos with no channel)" for c in found)
        raise ConfigError(f"{label} is a voice of {len(found)} channels ({shown}): pass --channel URL")
    return found[0]


async def _unknown(edit: VoiceEdit, label: str, channel: str) -> Voice:
    found = await edit.unknowns(label, channel)
    if not found:
        where = channel or "videos with no channel"
        raise ConfigError(f"no anonymous voice called {label} in {where} ({LIST_HINT})")
    if len(found) > 1:
        models = ", ".join(v.model for v in found)
        raise ConfigError(f"{label} in {channel} is kept for several speaker models ({models})")
    return found[0]


async def _into_enrolled(edit: VoiceEdit, voice: Voice, name: str) -> NameReport:
    """``voice`` (anonymous) becomes the enrolled ``name``, or joins its voiceprint if it has one."""
    existing = await edit.voiceprint(name)
    vector, note = voice.vector, ""
    if existing is not None:
        _same_model(voice, existing)
        vector = _mean(existing, voice)
        origin = "from voices/" if existing.source == "folder" else "named"
        note = f"averaged into {name}'s voiceprint ({origin}) with equal weight: voiceprints keep no weight"
    await edit.save_voiceprint(name, vector, voice.model)
    segments, videos = await edit.relabel(voice.label, name, channel=voice.channel)
    await edit.delete(voice)
    return NameReport(voice.label, name, segments, videos, voice.channel, note)


async def name_voice(db: Database, label: str, name: str, *, channel: str | None) -> NameReport:
    """The anonymous voice ``label`` (of ``channel``; None: the only channel that has it) becomes
    the enrolled voice ``name`` (source 'named'; a voiceprint ``name`` already has, of the same
    speaker model, is averaged with it), and its stored segments are relabelled, in one transaction."""
    name = _check_name(name)
    where = await _channel_of(db, label, channel)
    async with db.editing_voices([where]) as edit:
        return await _into_enrolled(edit, await _unknown(edit, label, where), name)


async def merge_voices(db: Database, keep: str, gone: str, *, channel: str | None) -> NameReport:
    """Two labels of one person become ``keep``: ``gone``'s segments (of its channel, for an
    anonymous voice) are relabelled, the voices averaged (by seconds of speech where both have
    them) and ``gone`` deleted. A voice of voices/ cannot be merged away (the next enrolment would
    bring it back), nor voices of different speaker models."""
    if keep == gone:
        raise ConfigError(f"{keep} and {gone} are the same voice")
    enrolled = {p.name for p in await db.voiceprints()}
    if gone in enrolled:
        return await _merge_enrolled(db, keep, gone, enrolled=enrolled, channel=channel)
    where = await _channel_of(db, gone, channel)
    async with db.editing_voices([where]) as edit:
        old = await _unknown(edit, gone, where)
        if keep in enrolled:
            return await _into_enrolled(edit, old, keep)
        kept = await _unknown(edit, keep, where)
        _same_model(kept, old)
        weight = (kept.weight or 0.0) + (old.weight or 0.0)
        await edit.save_unknown(Voice(keep, kept.model, _mean(kept, old), "unknown", where, weight))
        segments, videos = await edit.relabel(gone, keep, channel=where)
        await edit.delete(old)
    return NameReport(gone, keep, segments, videos, where)


async def _merge_enrolled(
    db: Database, keep: str, gone: str, *, enrolled: set[str], channel: str | None
) -> NameReport:
    """Merge away an enrolled voice: into another enrolled one, in every channel."""
    if keep not in enrolled:
        raise ConfigError(
            f'{gone} is enrolled and {keep} is not: `ytingest speakers merge "{gone}" {keep}` keeps the name'
        )
    if channel is not None:
        raise ConfigError(f"{keep} and {gone} are enrolled voices of every channel: leave out --channel")
    async with db.editing_voices([]) as edit:
        old, kept = await edit.voiceprint(gone), await edit.voiceprint(keep)
        if old is None or kept is None:
            raise ConfigError(f"{gone} or {keep} was deleted meanwhile ({LIST_HINT})")
        if old.source == "folder":
            raise ConfigError(
                f"{gone} comes from voices/{gone}: remove that folder first, or the next enrolment"
                " brings it back"
            )
        _same_model(kept, old)
        await edit.save_voiceprint(keep, _mean(kept, old), kept.model)
        segments, videos = await edit.relabel(gone, keep, channel=None)
        await edit.delete(old)
    note = "voiceprints averaged with equal weight: voiceprints keep no weight"
    return NameReport(gone, keep, segments, videos, None, note)
