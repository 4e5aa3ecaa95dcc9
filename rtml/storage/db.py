"""Connections, transactions and migrations for the shared SQLite database.

Writers: :func:`connect` (WAL, ``busy_timeout``, ``synchronous=NORMAL`` — a committed
transaction survives a killed process), explicit short ``BEGIN IMMEDIATE`` transactions through
:func:`transaction`.  Readers: :func:`connect_readonly` (``mode=ro``), which can never write.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rtml.storage.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)


class StorageError(RuntimeError):
    """The database is missing, unreadable, too new or damaged; the message says what to do."""


def connect(path: str | Path, *, busy_timeout_ms: int = 5000, migrate_schema: bool = True) -> sqlite3.Connection:
    """Open the database for writing (creating it and its folder), in WAL mode, migrated.

    Parameters
    ----------
    path : str or Path
        The SQLite file.
    busy_timeout_ms : int, default=5000
        How long to wait for another writer's lock.
    migrate_schema : bool, default=True
        Bring the schema up to :data:`SCHEMA_VERSION` first.

    Returns
    -------
    sqlite3.Connection
        In autocommit mode: use :func:`transaction` for every write.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000.0, isolation_level=None,
                               check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"Cannot open database {path}: {exc}. Check that the folder exists and "
                           "is writable, or set storage.db_path.") from None
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise StorageError(f"Database {path} could not switch to WAL mode (got {mode!r}).")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    if migrate_schema:
        migrate(conn)
    return conn


def connect_readonly(path: str | Path, *, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """Open an existing database read-only (``mode=ro``); raises :class:`StorageError` if absent."""
    path = Path(path)
    if not path.exists():
        raise StorageError(f"Database {path} does not exist yet. Start the generator "
                           "(./run_system.sh start) or point storage.db_path at an existing file.")
    try:
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, isolation_level=None,
                               timeout=busy_timeout_ms / 1000.0, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise StorageError(f"Cannot open database {path} read-only: {exc}") from None
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One short write transaction (``BEGIN IMMEDIATE``): all of it commits or none of it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's ``PRAGMA user_version``."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every pending migration, each in its own transaction; return the new version."""
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StorageError(f"The database schema is version {current}, newer than this rtml "
                           f"({SCHEMA_VERSION}). Upgrade rtml or use another database.")
    for number in range(current + 1, SCHEMA_VERSION + 1):
        with transaction(conn):
            if schema_version(conn) >= number:  # another process migrated meanwhile
                continue
            for statement in MIGRATIONS[number - 1].split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        log.info("Database migrated to schema version %d", number)
    return schema_version(conn)


def quick_check(conn: sqlite3.Connection) -> str:
    """``PRAGMA quick_check``: ``"ok"`` or the first problem found."""
    return str(conn.execute("PRAGMA quick_check").fetchone()[0])


def integrity_check(conn: sqlite3.Connection) -> str:
    """``PRAGMA integrity_check``: ``"ok"`` or the first problem found."""
    return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
