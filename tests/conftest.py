"""Shared fixtures: throw-away settings and databases under tmp_path (never the user's data/).

``backend`` runs a test against each database backend: SQLite always, PostgreSQL when
``RTML_TEST_POSTGRES_URL`` names a server (``postgresql://postgres@127.0.0.1:5432/test``); each
PostgreSQL test gets a database of its own (``rtml_test_<random>``), dropped afterwards. When the
variable is set but the server does not answer, the PostgreSQL tests FAIL (never skip): CI sets it.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from rtml.config import load_settings

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
POSTGRES_ENV = "RTML_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_ENV, "").strip()
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason=f"set {POSTGRES_ENV}=postgresql://user@host:5432/db to run the PostgreSQL variant"))]


def make_settings(home: Path, **overrides):
    """Settings for a temp home with the project's defaults and dotted-key overrides.

    The detector's /metrics endpoint is off unless a test turns it on (tests run side by side)."""
    overrides = {"metrics.enabled": False, **overrides}
    return load_settings(environ={}, home=home, config_file=PROJECT / "config.toml", overrides=overrides)


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Backend:
    """One database backend for one test: ``url`` is a fresh PostgreSQL database, or ``None`` (SQLite)."""

    name: str
    tmp_path: Path
    url: str | None = None
    new_database: Any = None

    @property
    def is_postgres(self) -> bool:
        return self.url is not None

    def target(self, filename: str = "m.db"):
        """What ``rtml.storage.connect`` takes: the PostgreSQL URL, or a SQLite file under tmp_path."""
        return self.url if self.url else self.tmp_path / filename

    def settings(self, home: Path | None = None, **overrides):
        """:func:`make_settings` pointed at this backend."""
        if self.url:
            overrides = {"storage.database_url": self.url, **overrides}
        return make_settings(home or self.tmp_path, **overrides)

    def other(self, home: Path, **overrides):
        """Settings of a second, independent database (another file, or another PostgreSQL database)."""
        if self.url:
            overrides = {"storage.database_url": self.new_database(), **overrides}
        return make_settings(home, **overrides)

    def env(self) -> dict[str, str]:
        """Environment for subprocesses (``RTML_STORAGE_DATABASE_URL`` when PostgreSQL)."""
        return {"RTML_STORAGE_DATABASE_URL": self.url} if self.url else {}


def _with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def _admin(url: str):
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server fails the test
        pytest.fail(f"{POSTGRES_ENV}={url} is set but PostgreSQL does not answer: {exc}", pytrace=False)


@pytest.fixture
def postgres_databases():
    """A factory of fresh, empty PostgreSQL databases (returns a URL); all dropped after the test."""
    if not POSTGRES_URL:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    admin = _admin(POSTGRES_URL)
    names: list[str] = []

    def make() -> str:
        name = f"rtml_test_{uuid.uuid4().hex[:12]}"
        admin.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return _with_database(POSTGRES_URL, name)

    try:
        yield make
    finally:
        try:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.close()


@pytest.fixture
def postgres_database(postgres_databases):
    """A fresh, empty PostgreSQL database (its URL); dropped after the test."""
    return postgres_databases()


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    """Each backend in turn (see the module docstring)."""
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path)
    factory = request.getfixturevalue("postgres_databases")
    return Backend("postgres", tmp_path, factory(), factory)


def wait_for_db(db, predicate, *, timeout_s: float = 30.0, poll_s: float = 0.2) -> bool:
    """Poll a database (a SQLite path or a URL) read-only until ``predicate(conn)`` is true (errors
    while it is being created count as "not yet"); return whether it became true within ``timeout_s``."""
    import time

    from rtml.storage import DatabaseError, StorageError, connect_readonly

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        time.sleep(poll_s)
        try:
            with connect_readonly(db) as ro:
                if predicate(ro):
                    return True
        except (*DatabaseError, StorageError):
            pass
    return False
