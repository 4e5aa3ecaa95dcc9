"""The generator service: backfills the baseline, then writes live batches on the simulated clock.

One batch is one transaction (interactions, batch record, changed customers, clock state), so a
generator killed at any moment leaves only whole batches, and a restarted generator continues
exactly where the last committed batch ended, writing the rows it would have written.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from rtml.config import Settings
from rtml.simulation import DAY_S, DriftSchedule, Simulator
from rtml.storage import interactions as store
from rtml.storage.heartbeats import read_heartbeats, write_heartbeat
from rtml.storage.db import Connection

log = logging.getLogger(__name__)

COMPONENT = "generator"


class GeneratorBusyError(RuntimeError):
    """Another generator is writing to this database."""


class Generator:
    """Owns the simulator state and the clock for one database.

    Parameters
    ----------
    settings : Settings
    conn : Connection
        A writer connection (``rtml.storage.connect``).
    """

    def __init__(self, settings: Settings, conn: Connection):
        self.settings = settings
        self.conn = conn
        self.sim_settings = settings.simulation
        self.pid = os.getpid()
        self.started_at = time.time()
        state = store.read_generator_state(conn)
        fingerprint = state.settings_fingerprint
        start_s = float(fingerprint.get("start_s", settings.sim_start_s))
        tick_s = float(fingerprint.get("tick_s", self.sim_settings.tick_seconds))
        if fingerprint and (start_s != settings.sim_start_s or tick_s != self.sim_settings.tick_seconds):
            log.warning("This database was started with simulation.start=%s and tick_seconds=%s; "
                        "keeping those so its clock stays continuous (run ./run_system.sh reset to start over)",
                        start_s, tick_s)
        self.fingerprint = {"start_s": start_s, "tick_s": tick_s, "seed": fingerprint.get("seed", self.sim_settings.seed)}
        seed = int(self.fingerprint["seed"])
        if fingerprint and seed != self.sim_settings.seed:
            log.warning("This database was started with seed %d; continuing with it", seed)
        schedule = DriftSchedule.from_settings(self.sim_settings, start_s=start_s)
        batch_rows = (self.sim_settings.batch_min_rows, self.sim_settings.batch_max_rows)
        if state.pool is None:
            pool_time = start_s - self.sim_settings.baseline_days * DAY_S
            self.sim = Simulator.new(schedule, seed=seed, n_customers=self.sim_settings.n_customers,
                                     now_s=pool_time, tick_s=tick_s, batch_rows=batch_rows)
        else:
            self.sim = Simulator(schedule, seed=seed, pool=state.pool, tick_s=tick_s, batch_rows=batch_rows)
        self.next_tick = state.next_tick
        self.baseline_done = state.baseline_done

    # -- clock ---------------------------------------------------------------------------------
    @property
    def sim_time(self) -> float:
        """Simulated time at the end of the last committed batch."""
        return self.sim.tick_time(self.next_tick)

    def heartbeat(self, state: str, sim_time: float | None = None) -> None:
        """Write this component's heartbeat (clock reading and speed included)."""
        write_heartbeat(self.conn, component=COMPONENT, pid=self.pid, state=state,
                        sim_time=self.sim_time if sim_time is None else sim_time,
                        speed=self.sim_settings.speed, started_at=self.started_at,
                        details={"next_tick": self.next_tick, "scenario": self.sim_settings.scenario})

    def check_no_other_writer(self) -> None:
        """Refuse to run beside another live generator on the same database."""
        beat = read_heartbeats(self.conn).get(COMPONENT)
        if (beat and beat.pid and beat.pid != self.pid and beat.state in ("running", "replay")
                and beat.age_s() < 30 and _pid_alive(beat.pid)):
            raise GeneratorBusyError(
                f"Another generator (pid {beat.pid}) is writing to {self.settings.database_label}. "
                "Stop it first (./run_system.sh stop) or use another --db.")

    # -- batches -------------------------------------------------------------------------------
    def backfill_baseline(self) -> int:
        """Write the baseline (``baseline_rows`` over ``baseline_days`` before start) once.

        Each simulated day is one transaction; returns the rows written (0 if already done).
        """
        if self.baseline_done:
            return 0
        days = self.sim_settings.baseline_days
        n_days = int(-(-days // 1))
        done_days = store.read_generator_state(self.conn).baseline_days_done
        total = 0
        for day in range(done_days, n_days):  # days committed before a restart are skipped
            batch, changed = self.sim.baseline(day=day, days=days, rows=self.sim_settings.baseline_rows)
            begin = self.sim.schedule.start_s - days * DAY_S
            last = day == n_days - 1
            store.write_batch(self.conn, batch, kind="baseline", sim_start=begin + day * DAY_S,
                              sim_end=min(begin + (day + 1) * DAY_S, self.sim.schedule.start_s),
                              pool=self.sim.pool, changed_slots=None if last or day == 0 else changed,
                              state={"baseline_done": last, "next_tick": 0, "baseline_days_done": day + 1,
                                     "fingerprint": self.fingerprint})
            total += len(batch)
        self.baseline_done = True
        log.info("Backfilled the baseline: %d interactions over %.1f simulated days", total, days)
        return total

    def write_ticks(self, n_ticks: int, *, kind: str = "live") -> store.BatchRecord:
        """Simulate and commit ``n_ticks`` ticks from the clock's position as one batch."""
        first = self.next_tick
        batch, changed = self.sim.ticks(first_tick=first, n_ticks=n_ticks)
        record = store.write_batch(
            self.conn, batch, kind=kind, sim_start=self.sim.tick_time(first),
            sim_end=self.sim.tick_time(first + n_ticks), pool=self.sim.pool, changed_slots=changed,
            state={"next_tick": first + n_ticks},
            first_tick=first, n_ticks=n_ticks)
        self.next_tick = first + n_ticks
        return record

    def apply_retention(self, *, max_batches: int | None = 5) -> int:
        """Delete interactions older than ``retention_days`` before the clock (bounded rounds)."""
        cutoff = self.sim_time - self.settings.storage.retention_days * DAY_S
        n = store.delete_old_interactions(self.conn, before_s=cutoff,
                                          batch_rows=self.settings.storage.retention_batch_rows,
                                          max_batches=max_batches)
        if n:
            log.info("Retention: deleted %d interactions older than %.1f simulated days", n,
                     self.settings.storage.retention_days)
        return n

    # -- modes ---------------------------------------------------------------------------------
    def replay(self, days: float, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Generate ``days`` simulated days at the live rate as fast as possible; return rows written.

        ``progress(ticks_done, ticks_total)`` is called after each committed batch.
        """
        total_ticks = int(round(days * DAY_S / self.sim.tick_s))
        per_batch = self.sim_settings.replay_batch_ticks
        done = rows = 0
        ticks_per_day = int(DAY_S / self.sim.tick_s)
        self.heartbeat("replay")
        while done < total_ticks:
            n = min(per_batch, total_ticks - done)
            record = self.write_ticks(n, kind="replay")
            done += n
            rows += record.n_rows
            if done % ticks_per_day < per_batch:
                self.apply_retention(max_batches=None)
                self.heartbeat("replay")
            if progress:
                progress(done, total_ticks)
        self.heartbeat("stopped")
        return rows

    def run_live(self, stop: threading.Event, *, max_batches: int | None = None) -> int:
        """Write a batch every tick of the simulated clock until ``stop`` is set.

        The clock resumes where the last committed batch ended. When the machine falls behind
        (high speed), several due ticks are written as one batch. The current batch is always
        finished before returning. Returns the number of batches written.
        """
        speed = self.sim_settings.speed
        interval = self.settings.supervisor.heartbeat_interval_seconds
        anchor_real, anchor_sim = time.monotonic(), self.sim_time
        batches = 0
        last_beat = 0.0
        last_retention_day = int(self.sim_time // DAY_S)
        log.info("Generating live data from simulated %s at speed %gx (scenario %s)",
                 _iso(self.sim_time), speed, self.sim_settings.scenario)
        while not stop.is_set() and (max_batches is None or batches < max_batches):
            now_sim = anchor_sim + (time.monotonic() - anchor_real) * speed
            due = int((now_sim - self.sim.tick_time(self.next_tick)) // self.sim.tick_s)
            if due >= 1:
                n = min(due, self.sim_settings.replay_batch_ticks)
                record = self.write_ticks(n)
                batches += 1
                log.debug("Batch %d: %d interactions, %d tick(s)", record.batch_id, record.n_rows, n)
                if batches % 100 == 1:
                    log.info("Batch %d: %d interactions up to simulated %s", record.batch_id, record.n_rows,
                             _iso(self.sim_time))
                day = int(self.sim_time // DAY_S)
                if day != last_retention_day:
                    last_retention_day = day
                    self.apply_retention()
            if time.monotonic() - last_beat >= interval:
                self.heartbeat("running", sim_time=max(min(now_sim, self.sim.tick_time(self.next_tick + 1)),
                                                       self.sim_time))
                last_beat = time.monotonic()
            wait_sim = self.sim.tick_time(self.next_tick + 1) - now_sim
            to_beat = interval - (time.monotonic() - last_beat)
            stop.wait(max(0.0, min(wait_sim / speed, to_beat)))  # the next tick or heartbeat, whichever is first
        self.heartbeat("stopped")
        log.info("Generator stopped after %d batches at simulated %s", batches, _iso(self.sim_time))
        return batches


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
