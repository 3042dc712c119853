"""``Database``: one asyncpg pool and every query the engine and the CLI run, grouped by table.

The queries live in one mixin per concern, all over the shared pool of ``db.pool.Store``:
``LedgerStore`` (channels, videos), ``SegmentStore`` (storing and exporting segments),
``SearchStore`` (search indexes, ranked search, video and channel listings) and
``VoiceprintStore`` (voiceprints, unknown speakers), ``ClusterStore`` (workers, claims) and
``CheckpointStore`` (the finished windows of videos not yet stored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ytingest.config import Settings
from ytingest.db.checkpoints import CheckpointStore
from ytingest.db.embedded import EmbeddedPostgres
from ytingest.db.ledger import LedgerStore
from ytingest.db.search import SearchStore
from ytingest.db.segments import SegmentStore
from ytingest.db.upgrades import UpgradeStore
from ytingest.db.voiceprints import VoiceprintStore
from ytingest.db.workers import ClusterStore

if TYPE_CHECKING:
    from ytingest.ports import CheckpointStorage, RunStore, SearchIndex, VoiceRegistry

__all__ = ["Database"]


class Database(
    LedgerStore, SegmentStore, SearchStore, VoiceprintStore, ClusterStore, CheckpointStore, UpgradeStore
):
    """A pool of DB_WORKERS connections with pgvector's codec, and the ledger/search/speaker queries."""

    def __repr__(self) -> str:
        return f"Database({self.where!r})"


async def open_database(settings: Settings) -> tuple[Database, EmbeddedPostgres | None]:
    """DATABASE_URL's database (not connected yet), or one on an embedded server started now in
    PG_DIR (returned, for the caller to stop)."""
    embedded = None
    if settings.database_url is None:
        embedded = EmbeddedPostgres(settings.pg_dir)
        url = await embedded.start()
    else:
        url = settings.database_url.get_secret_value()
    return Database(url, pool_size=settings.db_workers + 1, retry_s=settings.db_retry_s), embedded


if TYPE_CHECKING:  # mypy checks here that this one adapter implements every storage port
    _PORTS: tuple[type[RunStore], type[SearchIndex], type[VoiceRegistry], type[CheckpointStorage]]
    _PORTS = (Database, Database, Database, Database)
