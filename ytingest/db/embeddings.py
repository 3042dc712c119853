"""Many embedding models in one database: the ``embed_models`` registry and each model's index.

Every segment row carries its vector and the name of the model that made it
(``segments.embed_model``); the column has no fixed size. Each model is registered once with its
size (``embed_models``), and its HNSW index is a partial expression index over its own rows:
``(embedding::vector(DIM)) ... WHERE embed_model = 'NAME'``. A semantic search names the model of
the query's embedder, so it ranks only vectors of that model, through that model's index. The
model name is written into the SQL as a literal (quoted by the server's ``quote_literal``), never
as a parameter: PostgreSQL matches a partial index only against a query's constants.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from ytingest.errors import ConfigError

INDEX_PREFIX = "segments_embedding_hnsw_"


@dataclass(frozen=True, slots=True)
class EmbedModel:
    """A registered embedding model: its number (naming its index), name and vector size."""

    id: int
    name: str
    dim: int
    literal: str  # the name as an SQL literal

    @property
    def index(self) -> str:
        return f"{INDEX_PREFIX}{self.id}"

    @property
    def vector(self) -> str:
        """The expression its index is over (and its searches order by)."""
        return f"(s.embedding::vector({self.dim}))"

    def index_sql(self) -> str:
        return (
            f"CREATE INDEX IF NOT EXISTS {self.index} ON segments USING hnsw"
            f" ((embedding::vector({self.dim})) vector_cosine_ops) WHERE embed_model = {self.literal}"
        )


_SELECT = "SELECT id, name, dim, quote_literal(name) AS literal FROM embed_models"


def _model(row: asyncpg.Record) -> EmbedModel:
    return EmbedModel(row["id"], row["name"], row["dim"], row["literal"])


async def register_model(conn: asyncpg.Connection, name: str, dim: int) -> EmbedModel:
    """The model ``name`` (registered now if new); a name stored before with another vector size
    is refused: its rows could not share one index."""
    await conn.execute(
        "INSERT INTO embed_models (name, dim) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, dim
    )
    model = _model(await conn.fetchrow(f"{_SELECT} WHERE name = $1", name))
    if model.dim != dim:
        raise ConfigError(
            f"embedding model {name!r} is stored with {model.dim}-d vectors but now gives {dim}-d;"
            " give the new one another name"
        )
    return model


async def all_models(conn: asyncpg.Connection) -> list[EmbedModel]:
    return [_model(r) for r in await conn.fetch(f"{_SELECT} ORDER BY id")]


async def model_for_search(conn: asyncpg.Connection, name: str | None, dim: int) -> EmbedModel | None:
    """The model whose vectors a query embedded by ``name`` (``dim``-d) is compared with; None when
    the database holds no vectors at all. Without a name: the one model of that size."""
    models = await all_models(conn)
    if not models:
        return None
    if name is not None:
        found = [m for m in models if m.name == name]
    else:
        found = [m for m in models if m.dim == dim]
    stored = ", ".join(f"{m.name!r} ({m.dim}-d)" for m in models)
    if len(found) != 1:
        what = f"{name!r}" if name is not None else f"a {dim}-d model"
        why = "several models match" if found else "no stored vectors are"
        raise ConfigError(
            f"{why} of {what}; the database holds {stored}: search with EMBED_MODEL set to one of"
            " them, or `ytingest reprocess --all --embed-model MODEL`"
        )
    if found[0].dim != dim:
        raise ConfigError(
            f"embedding model {found[0].name!r} is stored {found[0].dim}-d, the query is {dim}-d"
        )
    return found[0]


async def prune_models(conn: asyncpg.Connection) -> list[str]:
    """Forget the models no segment uses any more (their indexes go too); return their names."""
    gone = await conn.fetch(
        f"{_SELECT} m WHERE NOT EXISTS (SELECT 1 FROM segments s WHERE s.embed_model = m.name) ORDER BY id"
    )
    for row in gone:
        await conn.execute(f"DROP INDEX IF EXISTS {_model(row).index}")
        await conn.execute("DELETE FROM embed_models WHERE id = $1", row["id"])
    return [r["name"] for r in gone]
