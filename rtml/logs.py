"""Logging set-up shared by the three services: ``logs/<component>.log`` with rotation."""

from __future__ import annotations

import logging
import logging.handlers
import sys

from rtml.config import Settings

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(settings: Settings, component: str, *, to_stderr: bool = True) -> logging.Logger:
    """Send the root logger to ``logs/<component>.log`` (rotating) and, optionally, stderr.

    On a terminal stderr shows everything the file gets; otherwise (a supervised service, whose
    stderr is captured to ``logs/<component>.out``) only warnings and errors, so nothing is
    written twice. Returns the component's logger (``rtml.<component>``).
    """
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter(FORMAT)
    file_handler = logging.handlers.RotatingFileHandler(
        settings.logs_dir / f"{component}.log", maxBytes=settings.logging.max_bytes,
        backupCount=settings.logging.backup_count, encoding="utf-8")
    file_handler.setFormatter(formatter)
    root.addHandler(file_handler)
    if to_stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        if not sys.stderr.isatty():
            stream.setLevel(logging.WARNING)
        root.addHandler(stream)
    root.setLevel(settings.logging.level)
    return logging.getLogger(f"rtml.{component}")
