"""Keep pandas and pyarrow out of a process that never uses them (the detector service).

scikit-learn imports pandas at import time whenever it is installed (``sklearn.utils.fixes``:
``try: import pandas``), and pandas imports pyarrow; together that is ~78 MiB of resident
memory — a third of the detector — for libraries the detector never calls (it works on
:class:`rtml.table.Table`). Both are installed because the dashboard and ``drift_detector.py
check`` need them, so the detector service hides them from its own imports instead:
:func:`hide_dataframe_libraries` installs an import hook under which ``import pandas`` raises
``ModuleNotFoundError`` — exactly what scikit-learn expects when pandas is not installed.

Call it first thing in a process, before anything imports scikit-learn. A test runs the whole
detector service under it, so a code path that needs pandas fails there rather than in production.
"""

from __future__ import annotations

import importlib.abc
import sys

HIDDEN = ("pandas", "pyarrow")


class _HideModules(importlib.abc.MetaPathFinder):
    """Import hook: the top-level packages in ``names`` (and their submodules) are not found."""

    def __init__(self, names: tuple[str, ...]):
        self.names = frozenset(names)

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102 - importlib protocol
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{fullname} is hidden in this process (rtml.lean)", name=fullname)
        return None


def hide_dataframe_libraries(names: tuple[str, ...] = HIDDEN) -> None:
    """Make ``import pandas`` / ``import pyarrow`` fail in this process from now on.

    Idempotent.

    Raises
    ------
    RuntimeError
        When one of them is already imported (too late to save its memory; a bug in the caller).
    """
    loaded = [name for name in names if name in sys.modules]
    if loaded:
        raise RuntimeError(f"{', '.join(loaded)} already imported; hide_dataframe_libraries() must run first")
    if not any(isinstance(finder, _HideModules) for finder in sys.meta_path):
        sys.meta_path.insert(0, _HideModules(names))


__all__ = ["HIDDEN", "hide_dataframe_libraries"]
