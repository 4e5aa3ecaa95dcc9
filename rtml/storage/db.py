"""Connections, transactions and migrations for the shared database: SQLite or PostgreSQL.

This module is the one seam between rtml and its database server. Every other module speaks
through the connection it returns, with ``?`` placeholders, plain ``execute``/``executemany`` and
:func:`transaction`; the few dialect differences are functions here (:func:`insert_returning_id`,
:func:`bulk_insert`, :func:`read_snapshot`, :func:`last_sequence_id`).

SQLite (a file path or ``sqlite:///PATH``): writers use :func:`connect` (WAL, ``busy_timeout``,
``synchronous=NORMAL`` — a committed transaction survives a killed process) and explicit short
``BEGIN IMMEDIATE`` transactions through :func:`transaction`. Readers use :func:`connect_readonly`
(``mode=ro``), which can never write. The connection is a plain :class:`sqlite3.Connection`
(a subclass that only adds the ``dialect`` attribute), so the hot path has no Python proxy.

PostgreSQL (``postgresql://user@host:5432/db``, psycopg 3, imported only when used): a thin
:class:`PgConnection` in autocommit mode that translates ``?`` to ``%s``. :func:`transaction` runs
``BEGIN`` and takes one transaction-scoped advisory lock, so writers are serialised exactly as
SQLite's ``BEGIN IMMEDIATE`` serialises them (the code relies on that: one migration at a time,
the registry's read-then-update of the champion); readers are never blocked. Read-only
connections run ``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``. ``busy_timeout_ms``
becomes ``lock_timeout``. The schema version lives in a ``schema_version`` table (SQLite keeps
``PRAGMA user_version``); :func:`quick_check`/:func:`integrity_check` are a connectivity and
schema check there (PostgreSQL checksums its own pages; there is no cheap equivalent of
``PRAGMA integrity_check``).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlsplit, urlunsplit

from rtml.storage.schema import MIGRATIONS, SCHEMA_VERSION, TABLES

if TYPE_CHECKING:
    from rtml.config import Settings

log = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql", "postgres")
#: Key of the advisory lock every PostgreSQL write transaction holds ("rtml" in ASCII).
WRITE_LOCK_KEY = 0x72746D6C


class StorageError(RuntimeError):
    """The database is missing, unreadable, too new or damaged; the message says what to do."""


class PostgresError(RuntimeError):
    """A psycopg error, re-raised so that callers need not import psycopg (``__cause__`` is the original).

    ``sqlstate`` is PostgreSQL's error code (e.g. ``42P01`` undefined table), or ``None``.
    """

    def __init__(self, message: str, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate


#: Catch this where a database statement may fail, whichever the backend.
DatabaseError = (sqlite3.Error, PostgresError)


class SqliteConnection(sqlite3.Connection):
    """A :class:`sqlite3.Connection` that says its dialect (no overridden methods: C speed)."""

    dialect = "sqlite"


class PgConnection:
    """A psycopg 3 connection behind the subset of the sqlite3 API rtml uses.

    ``execute``/``executemany`` take ``?`` placeholders; ``execute`` returns the psycopg cursor
    (``fetchone``, ``fetchall``, ``rowcount``, iteration). Autocommit: :func:`transaction` issues
    ``BEGIN``/``COMMIT``. psycopg errors are re-raised as :class:`PostgresError`.
    """

    dialect = "postgresql"

    def __init__(self, raw: Any, url: str, *, readonly: bool):
        self.raw = raw
        self.url = url
        self.readonly = readonly

    def execute(self, sql: str, params: Sequence | None = ()) -> Any:
        import psycopg

        try:
            return self.raw.execute(_pg_sql(sql), tuple(params) if params is not None else ())
        except psycopg.Error as exc:
            raise _wrap(exc) from exc

    def executemany(self, sql: str, seq_of_params: Iterable[Sequence]) -> Any:
        import psycopg

        cur = self.raw.cursor()
        try:
            cur.executemany(_pg_sql(sql), seq_of_params)
        except psycopg.Error as exc:
            raise _wrap(exc) from exc
        return cur

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
        """``COPY table (columns) FROM STDIN`` — the fast bulk insert; returns the rows written."""
        import psycopg

        n = 0
        try:
            with self.raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        except psycopg.Error as exc:
            raise _wrap(exc) from exc
        return n

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> PgConnection:
        return self

    def __exit__(self, *exc: Any) -> None:  # like sqlite3: the connection stays open
        return None

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)

    def __repr__(self) -> str:
        return f"<PgConnection {redact_url(self.url)}{' read-only' if self.readonly else ''}>"


#: What :func:`connect` and :func:`connect_readonly` return.
Connection = Union[SqliteConnection, sqlite3.Connection, PgConnection]


def _wrap(exc: Exception) -> PostgresError:
    return PostgresError(f"{type(exc).__name__}: {str(exc).strip()}", getattr(exc, "sqlstate", None))


_PG_SQL_CACHE: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    """``?`` → ``%s`` and a literal ``%`` → ``%%`` outside quoted strings (cached per statement)."""
    out = _PG_SQL_CACHE.get(sql)
    if out is None:
        parts, quote = [], None
        for ch in sql:
            if quote:
                if ch == quote:
                    quote = None
                parts.append("%%" if ch == "%" else ch)
            elif ch in ("'", '"'):
                quote = ch
                parts.append(ch)
            elif ch == "?":
                parts.append("%s")
            elif ch == "%":
                parts.append("%%")
            else:
                parts.append(ch)
        out = "".join(parts)
        if len(_PG_SQL_CACHE) < 2000:
            _PG_SQL_CACHE[sql] = out
    return out


def is_postgres(conn: Any) -> bool:
    """Whether ``conn`` is a PostgreSQL connection."""
    return conn.__class__ is PgConnection


# -- targets: a Settings, a database URL or a SQLite path ------------------------------------------
def is_postgres_url(text: str) -> bool:
    """Whether ``text`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return str(text).split("://", 1)[0].lower() in POSTGRES_SCHEMES and "://" in str(text)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    if not is_postgres_url(url):
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def resolve_target(target: Any) -> tuple[str, str | Path]:
    """``("postgresql", url)`` or ``("sqlite", path)`` for a Settings, a URL or a path."""
    if hasattr(target, "database_url") and hasattr(target, "storage"):  # a Settings
        target = target.database_url
    if isinstance(target, Path):
        return "sqlite", target
    text = str(target)
    if is_postgres_url(text):
        return "postgresql", text
    if text.startswith("sqlite:///"):
        return "sqlite", Path(text[len("sqlite:///"):])
    if "://" in text:
        raise StorageError(f"Unsupported database URL {redact_url(text)!r}: use sqlite:///PATH or "
                           "postgresql://user@host:5432/dbname")
    return "sqlite", Path(text)


def describe_target(target: Any) -> str:
    """A path or a password-free URL, for messages."""
    kind, where = resolve_target(target)
    return redact_url(str(where)) if kind == "postgresql" else str(where)


# -- opening ---------------------------------------------------------------------------------------
def connect(target: Any, *, busy_timeout_ms: int = 5000, migrate_schema: bool = True) -> Connection:
    """Open the database for writing (creating a SQLite file and its folder), migrated.

    Parameters
    ----------
    target : Settings, str or Path
        ``settings`` (its ``database_url``), a database URL (``sqlite:///PATH``,
        ``postgresql://...``) or a SQLite file path.
    busy_timeout_ms : int, default=5000
        How long to wait for another writer's lock (SQLite ``busy_timeout``, PostgreSQL
        ``lock_timeout``).
    migrate_schema : bool, default=True
        Bring the schema up to :data:`SCHEMA_VERSION` first.

    Returns
    -------
    sqlite3.Connection or PgConnection
        In autocommit mode: use :func:`transaction` for every write.
    """
    kind, where = resolve_target(target)
    if kind == "postgresql":
        conn: Connection = _connect_pg(str(where), busy_timeout_ms=busy_timeout_ms, readonly=False)
    else:
        conn = _connect_sqlite(Path(where), busy_timeout_ms=busy_timeout_ms)
    if migrate_schema:
        migrate(conn)
    return conn


def _switch_to_wal(conn: sqlite3.Connection, *, timeout_s: float) -> str:
    """``PRAGMA journal_mode = WAL``, retried for up to ``timeout_s`` while the database is locked.

    On a new file the switch needs an exclusive lock, and when another connection holds one
    (creating the schema) SQLite answers SQLITE_BUSY at once instead of calling the busy
    handler: two processes starting on an empty database failed about one time in ten.
    """
    deadline = time.monotonic() + timeout_s
    delay_s = 0.005
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay_s)
            delay_s = min(2 * delay_s, 0.1)


def _connect_sqlite(path: Path, *, busy_timeout_ms: int) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000.0, isolation_level=None,
                               check_same_thread=False, factory=SqliteConnection)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"Cannot open database {path}: {exc}. Check that the folder exists and "
                           "is writable, or set storage.db_path.") from None
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    mode = _switch_to_wal(conn, timeout_s=busy_timeout_ms / 1000.0)
    if mode.lower() != "wal":
        raise StorageError(f"Database {path} could not switch to WAL mode (got {mode!r}).")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _connect_pg(url: str, *, busy_timeout_ms: int, readonly: bool) -> PgConnection:
    try:
        import psycopg
    except ImportError:
        raise StorageError("storage.database_url is a PostgreSQL URL but psycopg is not installed: "
                           "pip install 'psycopg[binary]' (it is in requirements.txt)") from None
    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="rtml")
    except psycopg.Error as exc:
        raise StorageError(f"Cannot connect to PostgreSQL at {redact_url(url)}: {str(exc).strip()}. "
                           "Check that the server runs and the URL (storage.database_url) is right.") from None
    _configure_adapters(raw)
    conn = PgConnection(raw, url, readonly=readonly)
    conn.execute(f"SET lock_timeout = {int(busy_timeout_ms)}")
    if readonly:
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    return conn


def _configure_adapters(raw: Any) -> None:
    """Python bools go in as 0/1 (the schema's flags are integers, as in SQLite); NUMERIC comes
    out as float (AVG/SUM of integers), never Decimal."""
    import psycopg
    from psycopg.adapt import Dumper
    from psycopg.types.numeric import FloatLoader

    int8 = psycopg.adapters.types["int8"].oid

    class BoolAsInt(Dumper):
        oid = int8

        def dump(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

    raw.adapters.register_dumper(bool, BoolAsInt)
    raw.adapters.register_loader("numeric", FloatLoader)


def connect_readonly(target: Any, *, busy_timeout_ms: int = 5000) -> Connection:
    """Open an existing database read-only; raises :class:`StorageError` if it does not exist.

    A PostgreSQL database "exists" for rtml once it holds rtml's schema (a writer migrated it).
    """
    kind, where = resolve_target(target)
    if kind == "postgresql":
        conn = _connect_pg(str(where), busy_timeout_ms=busy_timeout_ms, readonly=True)
        if schema_version(conn) == 0:
            conn.close()
            raise StorageError(f"Database {redact_url(str(where))} holds no rtml schema yet. Start the generator "
                               "(./run_system.sh start) or point storage.database_url at an rtml database.")
        return conn
    path = Path(where)
    if not path.exists():
        raise StorageError(f"Database {path} does not exist yet. Start the generator "
                           "(./run_system.sh start) or point storage.db_path at an existing file.")
    try:
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, isolation_level=None,
                               timeout=busy_timeout_ms / 1000.0, check_same_thread=False,
                               factory=SqliteConnection)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise StorageError(f"Cannot open database {path} read-only: {exc}") from None
    return conn


def database_exists(target: Any) -> bool:
    """Whether the database exists and holds rtml's schema (SQLite: the file exists and is not empty)."""
    kind, where = resolve_target(target)
    if kind == "sqlite":
        path = Path(where)
        return path.exists() and path.stat().st_size > 0
    try:
        conn = _connect_pg(str(where), busy_timeout_ms=2000, readonly=True)
    except StorageError:
        return False
    try:
        return schema_version(conn) > 0
    except DatabaseError:
        return False
    finally:
        conn.close()


# -- transactions ----------------------------------------------------------------------------------
@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """One short write transaction: all of it commits or none of it.

    SQLite: ``BEGIN IMMEDIATE``. PostgreSQL: ``BEGIN`` plus the advisory write lock (one writer
    transaction at a time across every process, like SQLite).
    """
    if is_postgres(conn):
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK_KEY,))
        except BaseException:
            _rollback_quietly(conn)
            raise
    else:
        conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        _rollback_quietly(conn)
        raise
    conn.execute("COMMIT")


def _rollback_quietly(conn: Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except DatabaseError as exc:  # a broken connection: the server rolls back by itself
        log.debug("ROLLBACK failed: %s", exc)


@contextmanager
def read_snapshot(conn: Connection) -> Iterator[Connection]:
    """One short read transaction: every query inside sees the same committed state."""
    if is_postgres(conn):
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    else:
        conn.execute("BEGIN")
    try:
        yield conn
    finally:
        try:
            conn.execute("COMMIT")
        except DatabaseError:
            _rollback_quietly(conn)


# -- dialect helpers -----------------------------------------------------------------------------
def insert_returning_id(conn: Connection, sql: str, params: Sequence) -> int:
    """Run one ``INSERT`` into a table with an ``id`` identity column; return the new id."""
    if is_postgres(conn):
        return int(conn.execute(sql + " RETURNING id", params).fetchone()[0])
    return int(conn.execute(sql, params).lastrowid)


_INSERT_SQL_CACHE: dict[tuple[str, tuple[str, ...]], str] = {}


def bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert many rows: ``executemany`` on SQLite, ``COPY`` on PostgreSQL (inside the caller's transaction)."""
    if is_postgres(conn):
        conn.copy_rows(table, columns, rows)
        return
    key = (table, tuple(columns))
    sql = _INSERT_SQL_CACHE.get(key)
    if sql is None:
        sql = _INSERT_SQL_CACHE[key] = (f"INSERT INTO {table} ({', '.join(columns)}) "
                                        f"VALUES ({', '.join('?' for _ in columns)})")
    conn.executemany(sql, rows)


def last_sequence_id(conn: Connection, table: str) -> int:
    """The id the last insert of this session gave ``table`` (SQLite ``last_insert_rowid()``,
    PostgreSQL ``currval`` of its identity sequence); call right after inserting."""
    if is_postgres(conn):
        row = conn.execute("SELECT currval(pg_get_serial_sequence(?, 'id'))", (table,)).fetchone()
    else:
        row = conn.execute("SELECT last_insert_rowid()").fetchone()
    return int(row[0])


# -- schema ----------------------------------------------------------------------------------------
def schema_version(conn: Connection) -> int:
    """The schema version: SQLite ``PRAGMA user_version``; PostgreSQL the ``schema_version`` table (0 if absent)."""
    if is_postgres(conn):
        if not conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]:
            return 0
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


_PG_DDL = ((re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
           (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
           (re.compile(r"\bINTEGER\b"), "BIGINT"))


def postgres_ddl(statement: str) -> str:
    """A migration statement in PostgreSQL's dialect: REAL → DOUBLE PRECISION (unix seconds need
    float8), INTEGER → BIGINT, ``INTEGER PRIMARY KEY AUTOINCREMENT`` → an identity column."""
    for pattern, replacement in _PG_DDL:
        statement = pattern.sub(replacement, statement)
    return statement


def migrate(conn: Connection) -> int:
    """Apply every pending migration, each in its own transaction; return the new version."""
    pg = is_postgres(conn)
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StorageError(f"The database schema is version {current}, newer than this rtml "
                           f"({SCHEMA_VERSION}). Upgrade rtml or use another database.")
    if pg and current < SCHEMA_VERSION:
        with transaction(conn):  # under the write lock: one process creates it
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
    for number in range(current + 1, SCHEMA_VERSION + 1):
        with transaction(conn):
            if schema_version(conn) >= number:  # another process migrated meanwhile
                continue
            for statement in MIGRATIONS[number - 1].split(";\n"):
                if statement.strip():
                    conn.execute(postgres_ddl(statement) if pg else statement)
            if pg:
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
            else:
                conn.execute(f"PRAGMA user_version = {number}")
        log.info("Database migrated to schema version %d", number)
    return schema_version(conn)


def drop_schema(conn: Connection) -> list[str]:
    """PostgreSQL only: drop every rtml table (``./run_system.sh reset``); returns the dropped names.

    A SQLite database is a file: reset deletes it instead.
    """
    if not is_postgres(conn):
        raise StorageError("drop_schema is for PostgreSQL; delete the SQLite file instead")
    dropped = []
    with transaction(conn):
        for table in (*TABLES, "schema_version"):
            if conn.execute("SELECT to_regclass(?) IS NOT NULL", (table,)).fetchone()[0]:
                conn.execute(f"DROP TABLE {table} CASCADE")
                dropped.append(table)
    return dropped


def quick_check(conn: Connection) -> str:
    """SQLite ``PRAGMA quick_check``: ``"ok"`` or the first problem found.

    PostgreSQL: the server answers and the schema is readable (the server guards its own pages).
    """
    if is_postgres(conn):
        return _pg_check(conn)
    return str(conn.execute("PRAGMA quick_check").fetchone()[0])


def integrity_check(conn: Connection) -> str:
    """SQLite ``PRAGMA integrity_check``: ``"ok"`` or the first problem found (PostgreSQL: as :func:`quick_check`)."""
    if is_postgres(conn):
        return _pg_check(conn)
    return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def _pg_check(conn: Connection) -> str:
    try:
        conn.execute("SELECT 1").fetchone()
        version = schema_version(conn)
        if version:
            conn.execute("SELECT COUNT(*) FROM (SELECT id FROM interactions LIMIT 1) AS probe").fetchone()
    except DatabaseError as exc:
        return str(exc)
    return "ok"
