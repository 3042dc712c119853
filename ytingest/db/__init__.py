"""PostgreSQL + pgvector: schema, embedded server, and every query ytingest runs."""

from ytingest.db.database import Database

__all__ = ["Database"]
