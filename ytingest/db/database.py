"""``Database``: one asyncpg pool and every query the engine and the CLI run, grouped by table.

The queries live in one mixin per concern, all over the shared pool of ``db.pool.Store``:
``Ledger`` (channels, videos), ``SegmentStore`` (storing and exporting segments),
``SearchStore`` (search indexes, ranked search, video and channel listings) and
``VoiceprintStore`` (voiceprints, unknown speakers), ``ClusterStore`` (workers, claims) and
``CheckpointStore`` (the finished windows of videos not yet stored).
"""

from __future__ import annotations

from ytingest.db.checkpoints import CheckpointStore
from ytingest.db.cluster import ClusterStore
from ytingest.db.ledger import Ledger
from ytingest.db.search import SearchStore
from ytingest.db.segments import SegmentStore
from ytingest.db.upgrades import UpgradeStore
from ytingest.db.voiceprints import VoiceprintStore

__all__ = ["Database"]


class Database(
    Ledger, SegmentStore, SearchStore, VoiceprintStore, ClusterStore, CheckpointStore, UpgradeStore
):
    """A pool of DB_WORKERS connections with pgvector's codec, and the ledger/search/speaker queries."""

    def __repr__(self) -> str:
        return f"Database({self.where!r})"
