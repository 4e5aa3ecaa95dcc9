"""All SQL of rtml lives in this package: connections and schema (``db``, ``schema``) and one
module of statements per group of tables, named after the tables it owns."""

from rtml.storage.db import (StorageError, connect, connect_readonly, integrity_check, migrate,
                             quick_check, schema_version, transaction)
from rtml.storage.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "StorageError", "connect", "connect_readonly", "integrity_check", "migrate",
           "quick_check", "schema_version", "transaction"]
