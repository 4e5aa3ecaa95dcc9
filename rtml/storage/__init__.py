"""All SQL of rtml lives in this package: connections and schema (``db``, ``schema``) and one
module of statements per group of tables, named after the tables it owns.

Backends: SQLite (a file) and PostgreSQL (a URL); :mod:`rtml.storage.db` is the only seam.
"""

from rtml.storage.db import (Connection, DatabaseError, PostgresError, StorageError, connect,
                             connect_readonly, database_exists, describe_target, drop_schema,
                             integrity_check, is_postgres, migrate, quick_check, read_snapshot,
                             schema_version, transaction)
from rtml.storage.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Connection", "DatabaseError", "PostgresError", "StorageError", "connect",
           "connect_readonly", "database_exists", "describe_target", "drop_schema",
           "integrity_check", "is_postgres", "migrate", "quick_check", "read_snapshot", "schema_version",
           "transaction"]
