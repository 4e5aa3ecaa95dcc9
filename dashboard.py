#!/usr/bin/env python3
"""rtml dashboard: the live monitoring page (Streamlit), reading the shared database read-only.

    streamlit run dashboard.py --server.address 127.0.0.1 --server.port 8501

Settings come from ``config.toml`` / ``RTML_*`` environment variables (``RTML_HOME``,
``RTML_STORAGE_DB_PATH``, ``RTML_DASHBOARD_*``); the page logic lives in :mod:`rtml.ui`.
"""

from __future__ import annotations

from rtml.ui.app import main


if __name__ == "__main__":
    main()
