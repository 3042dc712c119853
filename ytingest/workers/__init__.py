"""Many workers, one database: the job queue, claims, the shared download gate, ``ytingest worker``."""
