"""What every long-running rtml service shares: a stop event set by SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import threading


def stop_event_on_signals() -> threading.Event:
    """Return an event that SIGTERM or SIGINT sets, so the service finishes its current unit of
    work and exits 0 (call from the main thread)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop
