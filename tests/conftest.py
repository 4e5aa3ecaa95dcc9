"""Shared fixtures: throw-away settings and databases under tmp_path (never the user's data/)."""

from __future__ import annotations

import socket
import sqlite3
import sys
from pathlib import Path

import pytest

from rtml.config import load_settings

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


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


def wait_for_db(db: Path, predicate, *, timeout_s: float = 30.0, poll_s: float = 0.2) -> bool:
    """Poll a database read-only until ``predicate(conn)`` is true (errors while it is being
    created count as "not yet"); return whether it became true within ``timeout_s``."""
    import time

    from rtml.storage import StorageError, connect_readonly

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        time.sleep(poll_s)
        try:
            with connect_readonly(db) as ro:
                if predicate(ro):
                    return True
        except (StorageError, sqlite3.Error):
            pass
    return False
