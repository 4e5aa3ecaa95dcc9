"""Simulated e-commerce customers whose behaviour drifts over time (pure: no I/O, no global state).

The model, in the order a data scientist would check it (README "The simulator" mirrors this):

* **Customer pool.** ``n_customers`` returning customers with stable attributes (age, region,
  segment, price sensitivity, visit rate, purchase propensity) and a history that evolves in
  simulated time (previous purchases, last visit, tenure).  Histories follow a latent visit
  process — Poisson visits at the customer's own rate, each a purchase with the customer's
  propensity, churn with a 90-day mean lifetime (a churned customer is replaced by a new one) —
  and start at that process's equilibrium, so under the ``none`` scenario every feature is
  stationary whatever the interaction rate.
* **Interactions** are sessions sampled from the pool (a customer is picked in proportion to
  its visit rate) with features derived from the customer, the session and the drift
  intensity ``d``; see :func:`simulate_batch`.
* **Conversion** is a logistic model of the features (and the hidden price sensitivity) whose
  coefficients move with ``d`` (concept drift); see :func:`conversion_logit`.
* **Drift schedule** ``d(t)`` in [0, 1]; see :class:`DriftSchedule`.

Everything random comes from a ``numpy.random.Generator`` passed in; the same seed gives the
same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rtml.features import (CATEGORICAL_FEATURES, CATEGORIES, CUSTOMER_COLUMNS, DEVICES, FEATURES,  # noqa: F401
                           INTERACTION_COLUMNS, LABEL, NUMERICAL_FEATURES, REGIONS, SEGMENTS, TRAFFIC_SOURCES)

DAY_S = 86_400.0
EVOLVE_STEP_S = 3_600.0   # the pool's history advances at least hourly
CHURN_MEAN_DAYS = 90.0
REGION_SHARES = np.array([0.30, 0.25, 0.25, 0.20])
SEGMENT_SHARES = np.array([0.35, 0.50, 0.15])
# Traffic source shares for first-time visitors and for returning customers.
SOURCE_SHARES_NEW = np.array([0.15, 0.40, 0.20, 0.05, 0.20])
SOURCE_SHARES_RETURNING = np.array([0.30, 0.30, 0.10, 0.20, 0.10])

# Conversion model coefficients (logit scale), see conversion_logit().
INTERCEPT = -2.0
COEF_PREVIOUS_PURCHASES = 0.40      # x log1p(previous purchases): returning customers convert more
COEF_PAGES = 0.10                   # x (pages viewed - 4), pages capped at 20
COEF_SESSION = 0.20                 # x log(session duration / 240 s)
COEF_SOURCE = np.array([0.2, 0.1, -0.3, 0.5, -0.2])   # direct, search, social, email, ads
COEF_SEGMENT = np.array([-0.2, 0.0, 0.3])             # budget, regular, premium
COEF_MOBILE = -0.2                  # mobile penalty at d = 0 ...
COEF_MOBILE_DRIFT = -1.6            # ... plus this x concept_drift x d
COEF_TABLET = -0.1
COEF_PRICE = -1.0                   # x price sensitivity x cart value / 100 at d = 0 ...
COEF_PRICE_DRIFT = -3.0             # ... plus this x concept_drift x d
COEF_PAGES_DRIFT = -0.08            # engagement matters less under drift: x concept_drift x d x (pages - 4)


@dataclass(frozen=True)
class DriftSchedule:
    """Drift intensity ``d(t)`` in [0, 1] and the covariate multipliers it drives.

    Parameters
    ----------
    scenario : {"none", "gradual", "sudden", "recurring"}
        ``none``: d = 0. ``gradual``: 0 until onset, then a linear ramp to 1 over ``ramp_hours``.
        ``sudden``: 0 until onset, then 1. ``recurring``: 0 until onset, then
        ``(1 - cos(2 pi t / period)) / 2`` — up to 1 and back every ``period_hours``.
    start_s : float
        Simulated time (unix seconds) that onset is measured from.
    onset_hours, ramp_hours, period_hours : float
        Schedule shape, in simulated hours.
    age_shift, session_shrink, mobile_share_base, mobile_share_gain, mobile_share_cap,
    purchase_inflation, concept_drift : float
        age x (1 + age_shift d); session duration x (1 - session_shrink d);
        mobile share min(base + gain d, cap); cart value x (1 + purchase_inflation d);
        concept_drift scales how much the conversion model moves with d.

    Examples
    --------
    >>> s = DriftSchedule("gradual", start_s=0.0, onset_hours=2, ramp_hours=10)
    >>> [float(x) for x in s.intensity(np.array([0.0, 7 * 3600.0, 20 * 3600.0]))]
    [0.0, 0.5, 1.0]
    """

    scenario: str = "gradual"
    start_s: float = 0.0
    onset_hours: float = 2.0
    ramp_hours: float = 24.0
    period_hours: float = 48.0
    age_shift: float = 0.3
    session_shrink: float = 0.4
    mobile_share_base: float = 0.3
    mobile_share_gain: float = 0.4
    mobile_share_cap: float = 0.9
    purchase_inflation: float = 0.5
    concept_drift: float = 1.0

    def __post_init__(self) -> None:
        if self.scenario not in ("none", "gradual", "sudden", "recurring"):
            raise ValueError("The 'scenario' parameter of DriftSchedule must be one of none, gradual, "
                             f"sudden, recurring. Got {self.scenario!r} instead.")

    @classmethod
    def from_settings(cls, sim, *, start_s: float) -> DriftSchedule:
        """Build from ``Settings.simulation`` (an ``rtml.config.SimulationSettings``)."""
        return cls(scenario=sim.scenario, start_s=start_s, onset_hours=sim.drift_onset_hours,
                   ramp_hours=sim.drift_ramp_hours, period_hours=sim.recurring_period_hours,
                   age_shift=sim.age_shift, session_shrink=sim.session_shrink,
                   mobile_share_base=sim.mobile_share_base, mobile_share_gain=sim.mobile_share_gain,
                   mobile_share_cap=sim.mobile_share_cap, purchase_inflation=sim.purchase_inflation,
                   concept_drift=sim.concept_drift)

    def intensity(self, t_s: np.ndarray | float) -> np.ndarray:
        """Drift intensity at simulated times ``t_s`` (unix seconds)."""
        hours = (np.asarray(t_s, dtype=float) - self.start_s) / 3600.0 - self.onset_hours
        if self.scenario == "none":
            return np.zeros_like(hours)
        if self.scenario == "sudden":
            return (hours >= 0).astype(float)
        if self.scenario == "gradual":
            return np.clip(hours / self.ramp_hours, 0.0, 1.0)
        phase = np.clip(hours, 0.0, None) / self.period_hours
        return (1.0 - np.cos(2.0 * np.pi * phase)) / 2.0

    def mobile_share(self, d: np.ndarray) -> np.ndarray:
        """Target share of mobile sessions at intensity ``d``."""
        return np.minimum(self.mobile_share_base + self.mobile_share_gain * d, self.mobile_share_cap)

    def with_scenario(self, scenario: str) -> DriftSchedule:
        """A copy with another scenario."""
        return replace(self, scenario=scenario)


@dataclass
class CustomerPool:
    """The customers: stable attributes plus the evolving history (arrays of length n).

    Attributes: ``customer_id``, ``base_age``, ``region`` and ``segment`` (category codes),
    ``price_sensitivity`` in (0, 1), ``visit_rate`` (visits/day), ``propensity`` (chance that
    a latent visit is a purchase), ``signup_time``; history: ``previous_purchases``,
    ``last_visit_time``.  ``next_id`` numbers the next new customer.
    """

    customer_id: np.ndarray
    base_age: np.ndarray
    region: np.ndarray
    segment: np.ndarray
    price_sensitivity: np.ndarray
    visit_rate: np.ndarray
    propensity: np.ndarray
    signup_time: np.ndarray
    previous_purchases: np.ndarray
    last_visit_time: np.ndarray
    next_id: int

    COLUMNS = CUSTOMER_COLUMNS

    def __len__(self) -> int:
        return len(self.customer_id)

    def copy(self) -> CustomerPool:
        return CustomerPool(**{c: getattr(self, c).copy() for c in self.COLUMNS}, next_id=self.next_id)

    def rows(self, index: np.ndarray | None = None) -> list[tuple]:
        """The customers (all, or those at ``index``) as tuples in ``COLUMNS`` order."""
        cols = [getattr(self, c) if index is None else getattr(self, c)[index] for c in self.COLUMNS]
        return list(zip(*(c.tolist() for c in cols)))

    @classmethod
    def from_rows(cls, rows: list[tuple], next_id: int) -> CustomerPool:
        """Rebuild a pool from :meth:`rows` output (e.g. read back from the database)."""
        cols = list(zip(*rows))
        ints = {"customer_id", "region", "segment", "previous_purchases"}
        arrays = {c: np.asarray(v, dtype=np.int64 if c in ints else float) for c, v in zip(cls.COLUMNS, cols)}
        return cls(**arrays, next_id=next_id)


def _new_customer_attributes(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    base_age = np.clip(rng.normal(38.0, 12.0, n), 18.0, 85.0).round()
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARES)
    region = rng.choice(len(REGIONS), size=n, p=REGION_SHARES)
    # Budget customers and the young are more price sensitive.
    sens_mean = np.array([0.55, 0.35, 0.2])[segment] - 0.004 * (base_age - 38.0)
    price_sensitivity = np.clip(sens_mean + rng.normal(0, 0.1, n), 0.02, 0.98)
    visit_rate = np.exp(rng.normal(np.log(0.2), 0.5, n)) * np.array([0.8, 1.0, 1.5])[segment]
    propensity = np.clip(rng.beta(2.0, 8.0, n) * np.array([0.8, 1.0, 1.4])[segment], 0.0, 0.95)
    return {"base_age": base_age, "segment": segment.astype(np.int64), "region": region.astype(np.int64),
            "price_sensitivity": price_sensitivity, "visit_rate": visit_rate, "propensity": propensity}


def make_pool(rng: np.random.Generator, *, n_customers: int, now_s: float) -> CustomerPool:
    """Draw a pool at the equilibrium of its latent history process at time ``now_s``.

    Tenure is exponential with mean 90 days (the age distribution of a renewal process with
    exponential lifetimes), purchases so far are Poisson(visit rate x propensity x tenure),
    and the time since the last visit is the Poisson process's backward recurrence time,
    Exp(visit rate), capped at the tenure.
    """
    attrs = _new_customer_attributes(rng, n_customers)
    tenure_days = rng.exponential(CHURN_MEAN_DAYS, n_customers)
    purchases = rng.poisson(attrs["visit_rate"] * attrs["propensity"] * tenure_days)
    since_visit_days = np.minimum(rng.exponential(1.0 / attrs["visit_rate"]), tenure_days)
    return CustomerPool(customer_id=np.arange(1, n_customers + 1, dtype=np.int64),
                        signup_time=now_s - tenure_days * DAY_S,
                        previous_purchases=purchases.astype(np.int64),
                        last_visit_time=now_s - since_visit_days * DAY_S,
                        next_id=n_customers + 1, **attrs)


def evolve_pool(pool: CustomerPool, rng: np.random.Generator, *, t0_s: float, t1_s: float
                ) -> tuple[CustomerPool, np.ndarray]:
    """Advance the latent history process from ``t0_s`` to ``t1_s``.

    Returns the new pool and the indices of customers whose row changed (to persist them).
    Each customer churns with probability ``1 - exp(-dt / 90 days)`` (replaced by a new
    customer who signs up at a uniform time in the interval); the others make
    Poisson(visit rate x dt) latent visits, each a purchase with their propensity.
    """
    dt_days = max(t1_s - t0_s, 0.0) / DAY_S
    n = len(pool)
    new = pool.copy()
    churned = rng.random(n) < -np.expm1(-dt_days / CHURN_MEAN_DAYS)
    visits = rng.poisson(pool.visit_rate * dt_days)
    visits[churned] = 0
    purchases = rng.binomial(visits, pool.propensity)
    new.previous_purchases += purchases
    visited = visits > 0
    # The last of v uniform visit times in [t0, t1] is t1 - dt * U ** (1 / v).
    u = rng.random(n)
    last = t1_s - (t1_s - t0_s) * u[visited] ** (1.0 / visits[visited])
    new.last_visit_time[visited] = np.maximum(new.last_visit_time[visited], last)
    k = int(churned.sum())
    if k:
        idx = np.flatnonzero(churned)
        attrs = _new_customer_attributes(rng, k)
        for name, values in attrs.items():
            getattr(new, name)[idx] = values
        signup = t0_s + (t1_s - t0_s) * rng.random(k)
        new.signup_time[idx] = signup
        new.last_visit_time[idx] = signup
        new.previous_purchases[idx] = 0
        new.customer_id[idx] = np.arange(pool.next_id, pool.next_id + k)
        new.next_id = pool.next_id + k
    changed = np.flatnonzero(visited | churned)
    return new, changed


def conversion_logit(features: dict[str, np.ndarray], price_sensitivity: np.ndarray, d: np.ndarray,
                     concept_drift: float) -> np.ndarray:
    """Log-odds of conversion for each session (see the module constants for coefficients).

    ``logit = INTERCEPT + 0.40 log1p(previous_purchases) + (0.10 - 0.08 c d)(min(pages, 20) - 4)
    + 0.20 log(duration / 240) + source + segment + device(d) - (1.0 + 3.0 c d) x
    price_sensitivity x cart_value / 100``, with device(d) = -0.2 - 1.6 c d for mobile,
    -0.1 for tablet, 0 for desktop and ``c = concept_drift``.
    """
    cd = concept_drift * d
    pages = np.minimum(features["pages_viewed"], 20) - 4.0
    device = features["device_code"]
    mobile = (device == 1)
    logit = (INTERCEPT
             + COEF_PREVIOUS_PURCHASES * np.log1p(features["previous_purchases"])
             + (COEF_PAGES + COEF_PAGES_DRIFT * cd) * pages
             + COEF_SESSION * np.log(features["session_duration_s"] / 240.0)
             + COEF_SOURCE[features["source_code"]]
             + COEF_SEGMENT[features["segment_code"]]
             + np.where(mobile, COEF_MOBILE + COEF_MOBILE_DRIFT * cd, 0.0)
             + np.where(device == 2, COEF_TABLET, 0.0)
             + (COEF_PRICE + COEF_PRICE_DRIFT * cd) * price_sensitivity * features["cart_value"] / 100.0)
    return logit


@dataclass(frozen=True)
class Batch:
    """Simulated interactions as columns (numpy arrays, one entry per row), sorted by time.

    ``columns`` holds ``event_time``, ``customer_id``, every feature in :data:`FEATURES`
    (categoricals as strings), ``converted`` and ``drift_intensity``.
    """

    columns: dict[str, np.ndarray]

    COLUMNS = INTERACTION_COLUMNS

    def __len__(self) -> int:
        return len(self.columns["event_time"])

    def rows(self) -> list[tuple]:
        """Rows as tuples in :attr:`COLUMNS` order (plain Python values)."""
        return list(zip(*(self.columns[c].tolist() for c in self.COLUMNS)))


def simulate_batch(pool: CustomerPool, rng: np.random.Generator, schedule: DriftSchedule,
                   event_time: np.ndarray) -> Batch:
    """Simulate one session per entry of ``event_time`` (sorted unix seconds) from ``pool``.

    Relationships: the visitor is picked in proportion to visit rate; age is the customer's
    age x (1 + age_shift d); the device is mobile with probability
    ``mobile_share(d) + 0.008 (38 - base age)`` (the young prefer mobile), otherwise tablet
    (15 %) or desktop; session duration is log-normal (median 240 s) x 0.6 on mobile, x 0.85
    on tablet, x (1 - session_shrink d); pages viewed are 1 + Poisson(duration / 75 s); cart
    value is log-normal (median 45) x segment (0.7 / 1 / 1.8) x (1 + 0.008 (age - 38)) x
    (1 + purchase_inflation d); returning customers come more through direct and email; the
    label is Bernoulli(sigmoid(:func:`conversion_logit`)).
    """
    event_time = np.asarray(event_time, dtype=float)
    n = len(event_time)
    d = schedule.intensity(event_time)
    weights = pool.visit_rate / pool.visit_rate.sum()
    who = rng.choice(len(pool), size=n, p=weights)
    base_age = pool.base_age[who]
    age = np.round(base_age * (1.0 + schedule.age_shift * d))
    p_mobile = np.clip(schedule.mobile_share(d) + 0.008 * (38.0 - base_age), 0.01, 0.99)
    u = rng.random(n)
    device = np.where(u < p_mobile, 1, np.where(u < p_mobile + (1 - p_mobile) * 0.15, 2, 0))
    device_factor = np.array([1.0, 0.6, 0.85])[device]
    duration = (np.exp(rng.normal(np.log(240.0), 0.6, n)) * device_factor
                * (1.0 - schedule.session_shrink * d))
    duration = np.maximum(duration, 1.0).round(1)
    pages = 1 + rng.poisson(duration / 75.0)
    previous = pool.previous_purchases[who]
    since_days = np.maximum(event_time - pool.last_visit_time[who], 0.0) / DAY_S
    segment = pool.segment[who]
    cart = (np.exp(rng.normal(np.log(45.0), 0.7, n)) * np.array([0.7, 1.0, 1.8])[segment]
            * np.clip(1.0 + 0.008 * (base_age - 38.0), 0.5, None) * (1.0 + schedule.purchase_inflation * d))
    cart = cart.round(2)
    returning = previous > 0
    cdf_new, cdf_ret = np.cumsum(SOURCE_SHARES_NEW), np.cumsum(SOURCE_SHARES_RETURNING)
    u = rng.random(n)
    source = np.where(returning, np.searchsorted(cdf_ret, u * cdf_ret[-1], side="right"),
                      np.searchsorted(cdf_new, u * cdf_new[-1], side="right"))
    source = np.minimum(source, len(TRAFFIC_SOURCES) - 1)
    codes = {"pages_viewed": pages, "previous_purchases": previous, "session_duration_s": duration,
             "cart_value": cart, "device_code": device, "source_code": source, "segment_code": segment}
    logit = conversion_logit(codes, pool.price_sensitivity[who], d, schedule.concept_drift)
    converted = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    columns = {
        "event_time": event_time,
        "customer_id": pool.customer_id[who],
        "age": age,
        "session_duration_s": duration,
        "pages_viewed": pages.astype(np.int64),
        "previous_purchases": previous,
        "days_since_last_visit": since_days.round(3),
        "cart_value": cart,
        "device_type": np.asarray(DEVICES, dtype=object)[device],
        "traffic_source": np.asarray(TRAFFIC_SOURCES, dtype=object)[source],
        "region": np.asarray(REGIONS, dtype=object)[pool.region[who]],
        "customer_segment": np.asarray(SEGMENTS, dtype=object)[segment],
        "converted": converted,
        "drift_intensity": d.round(4),
    }
    return Batch(columns)


def tick_event_times(rng: np.random.Generator, *, first_tick_s: float, n_ticks: int, tick_s: float,
                     min_rows: int, max_rows: int) -> np.ndarray:
    """Event times for ``n_ticks`` consecutive ticks: each tick draws ``min_rows..max_rows``
    sessions at uniform times within its ``tick_s`` seconds; returned sorted."""
    sizes = rng.integers(min_rows, max_rows + 1, size=n_ticks)
    starts = first_tick_s + tick_s * np.repeat(np.arange(n_ticks), sizes)
    times = starts + tick_s * rng.random(len(starts))
    return np.sort(times)


def batch_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """A generator for one batch, derived from ``(seed, stream, index)``.

    Streams keep unrelated draws apart (0: pool creation, 1: baseline, 2: live ticks), so a
    batch's rows depend only on the seed, the pool state and where the batch sits in time:
    a generator restarted from its committed state writes exactly the rows it would have.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


class Simulator:
    """The customer pool plus the drift schedule, advanced batch by batch.

    Parameters
    ----------
    schedule : DriftSchedule
    seed : int
    pool : CustomerPool
        Current state (from :func:`make_pool` or read back from storage).
    tick_s : float, default=30.0
    batch_rows : tuple of int, default=(50, 100)
        Fewest and most sessions per tick.

    Examples
    --------
    >>> sched = DriftSchedule("none", start_s=0.0)
    >>> sim = Simulator.new(sched, seed=1, n_customers=100, now_s=0.0)
    >>> batch, changed = sim.ticks(first_tick=0, n_ticks=2)
    >>> 100 <= len(batch) <= 200
    True
    """

    def __init__(self, schedule: DriftSchedule, *, seed: int, pool: CustomerPool, tick_s: float = 30.0,
                 batch_rows: tuple[int, int] = (50, 100)):
        self.schedule = schedule
        self.seed = seed
        self.pool = pool
        self.tick_s = tick_s
        self.batch_rows = batch_rows

    @classmethod
    def new(cls, schedule: DriftSchedule, *, seed: int, n_customers: int, now_s: float, **kwargs) -> Simulator:
        """A simulator with a fresh equilibrium pool at ``now_s``."""
        pool = make_pool(batch_rng(seed, 0, 0), n_customers=n_customers, now_s=now_s)
        return cls(schedule, seed=seed, pool=pool, **kwargs)

    def tick_time(self, tick: int) -> float:
        """Simulated start time of live tick number ``tick`` (tick 0 starts at the schedule start)."""
        return self.schedule.start_s + tick * self.tick_s

    def ticks(self, *, first_tick: int, n_ticks: int) -> tuple[Batch, np.ndarray]:
        """Simulate live ticks ``first_tick .. first_tick + n_ticks - 1`` as one batch.

        The sessions see the pool as it stood at the batch start; the pool then evolves to the
        batch end.  Returns the batch and the indices of pool rows that changed.
        """
        rng = batch_rng(self.seed, 2, first_tick)
        t0 = self.tick_time(first_tick)
        times = tick_event_times(rng, first_tick_s=t0, n_ticks=n_ticks, tick_s=self.tick_s,
                                 min_rows=self.batch_rows[0], max_rows=self.batch_rows[1])
        return self._advance(rng, times, t0, t0 + n_ticks * self.tick_s)

    def baseline(self, *, day: int, days: float, rows: int) -> tuple[Batch, np.ndarray]:
        """Simulate one simulated day of the baseline backfill (``day`` 0 .. ceil(days) - 1).

        ``rows`` sessions are spread uniformly over the ``days`` before the schedule start, and
        this returns the part that falls in day ``day``.
        """
        rng = batch_rng(self.seed, 1, day)
        begin = self.schedule.start_s - days * DAY_S
        t0, t1 = begin + day * DAY_S, min(begin + (day + 1) * DAY_S, self.schedule.start_s)
        n_days = int(np.ceil(days))
        share = rows // n_days + (1 if day < rows % n_days else 0)
        times = np.sort(t0 + (t1 - t0) * rng.random(share))
        return self._advance(rng, times, t0, t1)

    def _advance(self, rng: np.random.Generator, times: np.ndarray, t0: float, t1: float
                 ) -> tuple[Batch, np.ndarray]:
        """Simulate sessions at ``times`` in [t0, t1), evolving the pool at every whole simulated
        hour inside the interval and at its end, so sessions never see a history more than an
        hour old whatever the batch length (a day of baseline, an hour of replay, a live tick)."""
        edges = np.arange(np.floor(t0 / EVOLVE_STEP_S) * EVOLVE_STEP_S + EVOLVE_STEP_S, t1, EVOLVE_STEP_S)
        bounds = [t0, *edges.tolist(), t1]
        parts, changed = [], []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            i, j = np.searchsorted(times, [lo, hi])
            parts.append(simulate_batch(self.pool, rng, self.schedule, times[i:j]))
            self.pool, step_changed = evolve_pool(self.pool, rng, t0_s=lo, t1_s=hi)
            changed.append(step_changed)
        columns = {c: np.concatenate([p.columns[c] for p in parts]) for c in Batch.COLUMNS}
        return Batch(columns), np.unique(np.concatenate(changed))
