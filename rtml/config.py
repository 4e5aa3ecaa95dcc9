"""Every tunable of rtml: defaults, ``config.toml``, ``RTML_*`` environment variables, CLI flags.

Sources, later wins: the defaults declared below < the TOML file (``config.toml`` in
``RTML_HOME``, or the file named by ``RTML_CONFIG``) < ``RTML_<SECTION>_<KEY>`` environment
variables < command-line overrides.  Every value is validated when loaded; a bad one raises
:class:`ConfigError` whose message names the key, the value given and what is allowed.  The
top-level scripts turn that into exit code 2.

This is the only module that reads ``os.environ`` (through the ``environ`` argument of
:func:`load_settings`, which ``main()`` passes in).
"""

from __future__ import annotations

import dataclasses
import math
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent

SCENARIOS = ("none", "gradual", "sudden", "recurring")
POLICIES = ("seed", "calibrated")
DECISION_METRICS = ("roc_auc", "accuracy", "f1", "log_loss", "brier")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(ValueError):
    """A configuration value (or file) is invalid; the message says which and what is allowed."""


def _opt(default: Any, help: str, *, check: Callable[[Any], bool] | None = None,
         allowed: str | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """Declare one setting: its default, help text and validation."""
    return field(default=default, metadata={
        "help": help, "check": check, "allowed": allowed, "choices": choices})


def _positive(v: float) -> bool:
    return v > 0


def _non_negative(v: float) -> bool:
    return v >= 0


def _unit_open(v: float) -> bool:
    return 0 < v < 1


def _iso_time(v: str) -> bool:
    try:
        parse_time(v)
    except ValueError:
        return False
    return True


def _database_url(v: str) -> bool:
    text = v.strip()
    if not text:
        return True
    scheme, sep, rest = text.partition("://")
    if not sep:
        return False
    if scheme == "sqlite":
        return rest.startswith("/") and len(rest) > 1
    return scheme in ("postgresql", "postgres") and bool(rest.split("/", 1)[0])


@dataclass(frozen=True)
class StorageSettings:
    """Where and how the shared database is kept."""

    db_path: str = _opt("data/monitoring.db",
                        "SQLite database file; a relative path is taken from RTML_HOME")
    database_url: str = _opt("", "Database URL; empty means SQLite at storage.db_path. sqlite:///REL/PATH "
                             "(from RTML_HOME), sqlite:////ABS/PATH, or postgresql://user[:password]@host:5432/dbname "
                             "to share one PostgreSQL server between hosts",
                             check=_database_url,
                             allowed="empty, sqlite:///PATH or postgresql://user@host:5432/dbname")
    busy_timeout_ms: int = _opt(5000, "How long a connection waits for a lock before failing (ms)",
                                check=_non_negative, allowed="an integer >= 0")
    retention_days: float = _opt(30.0, "Raw interactions older than this (simulated days) are deleted",
                                 check=_positive, allowed="a number > 0")
    retention_batch_rows: int = _opt(10000, "Rows deleted per retention transaction",
                                     check=_positive, allowed="an integer > 0")


@dataclass(frozen=True)
class SimulationSettings:
    """The simulated customers, their clock and the drift schedule."""

    seed: int = _opt(42, "Seed of every random draw; the same seed gives the same rows",
                     check=_non_negative, allowed="an integer >= 0")
    speed: float = _opt(1.0, "Simulated seconds per real second (1 = real time)",
                        check=_positive, allowed="a number > 0")
    start: str = _opt("2026-01-01T00:00:00Z",
                      "Simulated time at which live data starts (ISO 8601, UTC); the baseline precedes it",
                      check=_iso_time, allowed="an ISO 8601 time such as 2026-01-01T00:00:00Z")
    n_customers: int = _opt(5000, "Size of the returning-customer pool",
                            check=lambda v: v >= 10, allowed="an integer >= 10")
    scenario: str = _opt("gradual", "Drift schedule: none, gradual, sudden or recurring",
                         choices=SCENARIOS)
    drift_onset_hours: float = _opt(2.0, "Simulated hours after start when drift begins",
                                    check=_non_negative, allowed="a number >= 0")
    drift_ramp_hours: float = _opt(24.0, "Hours for gradual drift to go from 0 to full intensity",
                                   check=_positive, allowed="a number > 0")
    recurring_period_hours: float = _opt(48.0, "Period of the recurring scenario (there and back)",
                                         check=_positive, allowed="a number > 0")
    age_shift: float = _opt(0.3, "Covariate drift: age is multiplied by (1 + age_shift * d)",
                            check=lambda v: v > -1, allowed="a number > -1")
    session_shrink: float = _opt(0.4, "Covariate drift: session duration x (1 - session_shrink * d)",
                                 check=lambda v: v < 1, allowed="a number < 1")
    mobile_share_base: float = _opt(0.3, "Mobile share of sessions at d = 0",
                                    check=_unit_open, allowed="a number in (0, 1)")
    mobile_share_gain: float = _opt(0.4, "Mobile share grows to base + gain * d",
                                    check=_non_negative, allowed="a number >= 0")
    mobile_share_cap: float = _opt(0.9, "Mobile share never exceeds this",
                                   check=_unit_open, allowed="a number in (0, 1)")
    purchase_inflation: float = _opt(0.5, "Covariate drift: cart value x (1 + purchase_inflation * d)",
                                     check=lambda v: v > -1, allowed="a number > -1")
    concept_drift: float = _opt(1.0, "Strength of concept drift (0 = features drift, the label model does not)",
                                check=_non_negative, allowed="a number >= 0")
    baseline_days: float = _opt(7.0, "Simulated days of baseline history backfilled before start",
                                check=_positive, allowed="a number > 0")
    baseline_rows: int = _opt(3500, "Interactions in the baseline backfill",
                              check=lambda v: v >= 100, allowed="an integer >= 100")
    tick_seconds: float = _opt(30.0, "Simulated seconds between live batches",
                               check=_positive, allowed="a number > 0")
    batch_min_rows: int = _opt(50, "Fewest interactions in one live batch",
                               check=_positive, allowed="an integer > 0")
    batch_max_rows: int = _opt(100, "Most interactions in one live batch",
                               check=_positive, allowed="an integer > 0")
    replay_batch_ticks: int = _opt(120, "Ticks written per transaction in --replay mode",
                                   check=_positive, allowed="an integer > 0")


@dataclass(frozen=True)
class DriftSettings:
    """How and how often the detector compares the live window with the reference."""

    check_interval_minutes: float = _opt(5.0, "Simulated minutes between drift checks",
                                         check=_positive, allowed="a number > 0")
    window_minutes: float = _opt(20.0, "Current window length in simulated minutes",
                                 check=_positive, allowed="a number > 0")
    window_rows: int = _opt(0, "If > 0, the current window is the newest N rows instead",
                            check=_non_negative, allowed="an integer >= 0")
    policy: str = _opt("calibrated", "Decision policy: calibrated (default) or seed", choices=POLICIES)
    false_alarm_rate: float = _opt(0.01, "calibrated: target false-alarm rate per check on stationary data",
                                   check=lambda v: 0 < v < 0.5, allowed="a number in (0, 0.5)")
    min_drifted_features: int = _opt(2, "Dataset drift when at least this many features drift",
                                     check=_positive, allowed="an integer > 0")
    bins: int = _opt(10, "Quantile bins per numerical feature for PSI and JS",
                     check=lambda v: v >= 2, allowed="an integer >= 2")
    min_rows: int = _opt(30, "Fewer usable rows than this on a side gives 'not enough data'",
                         check=_positive, allowed="an integer > 0")
    psi_floor: float = _opt(0.05, "calibrated: a significant feature drifts only if PSI >= this ...",
                            check=_non_negative, allowed="a number >= 0")
    js_floor: float = _opt(0.05, "calibrated: ... or JS distance >= this ...",
                           check=lambda v: 0 <= v <= 1, allowed="a number in [0, 1]")
    ks_floor: float = _opt(0.05, "calibrated: ... or KS statistic >= this (numerical)",
                           check=lambda v: 0 <= v <= 1, allowed="a number in [0, 1]")
    seed_psi_threshold: float = _opt(0.1, "seed policy: PSI above this drifts", check=_positive,
                                     allowed="a number > 0")
    seed_ks_pvalue: float = _opt(0.05, "seed policy: KS p-value below this drifts",
                                 check=_unit_open, allowed="a number in (0, 1)")
    seed_js_threshold: float = _opt(0.1, "seed policy: JS distance above this drifts",
                                    check=_unit_open, allowed="a number in (0, 1)")
    seed_chi2_pvalue: float = _opt(0.05, "seed policy: chi-square p-value below this drifts",
                                   check=_unit_open, allowed="a number in (0, 1)")


@dataclass(frozen=True)
class AlertSettings:
    """When drift checks become alerts."""

    m: int = _opt(2, "An alert needs m of the last n checks to agree", check=_positive,
                  allowed="an integer > 0")
    n: int = _opt(3, "Number of recent checks considered", check=_positive, allowed="an integer > 0")
    cooldown_minutes: float = _opt(60.0, "Simulated minutes before the same severity alerts again",
                                   check=_non_negative, allowed="a number >= 0")
    critical_share: float = _opt(0.3, "Critical when at least this share of features drift",
                                 check=lambda v: 0 < v <= 1, allowed="a number in (0, 1]")
    critical_min_features: int = _opt(3, "Critical when at least this many features drift",
                                      check=_positive, allowed="an integer > 0")


@dataclass(frozen=True)
class ModelSettings:
    """Training, scoring, performance tracking and the champion/challenger gate."""

    n_estimators: int = _opt(100, "Trees in the random forest", check=_positive, allowed="an integer > 0")
    max_depth: int = _opt(10, "Depth limit of each tree (0 = unlimited)", check=_non_negative,
                          allowed="an integer >= 0")
    min_samples_leaf: int = _opt(5, "Fewest samples in a leaf", check=_positive, allowed="an integer > 0")
    score_batch_rows: int = _opt(5000, "Interactions scored per transaction", check=_positive,
                                 allowed="an integer > 0")
    label_delay_minutes: float = _opt(0.0, "Simulated minutes before a label may be used",
                                      check=_non_negative, allowed="a number >= 0")
    perf_window_minutes: float = _opt(60.0, "Window of the performance metrics (simulated minutes)",
                                      check=_positive, allowed="a number > 0")
    perf_drop: float = _opt(0.05, "Retrain when window ROC AUC falls this far below validation AUC",
                            check=_unit_open, allowed="a number in (0, 1)")
    retrain_cooldown_minutes: float = _opt(120.0, "Simulated minutes between retraining attempts",
                                           check=_non_negative, allowed="a number >= 0")
    train_window_hours: float = _opt(6.0, "Challenger trains on this much recent labelled data",
                                     check=_positive, allowed="a number > 0")
    holdout_fraction: float = _opt(0.2, "Most recent share of the training window held out for the gate",
                                   check=lambda v: 0 < v < 0.9, allowed="a number in (0, 0.9)")
    max_train_rows: int = _opt(50000, "Training rows are subsampled to at most this many",
                               check=lambda v: v >= 100, allowed="an integer >= 100")
    min_train_rows: int = _opt(1000, "No retraining with fewer labelled rows than this",
                               check=_positive, allowed="an integer > 0")
    min_improvement: float = _opt(0.005, "A challenger must beat the champion by this on decision_metric",
                                  check=_non_negative, allowed="a number >= 0")
    decision_metric: str = _opt("roc_auc", "Metric of the promotion gate", choices=DECISION_METRICS)


@dataclass(frozen=True)
class DashboardSettings:
    """The Streamlit UI."""

    host: str = _opt("127.0.0.1", "Address the dashboard binds to (keep 127.0.0.1 unless you mean it)",
                     check=lambda v: bool(v.strip()), allowed="a host name or address")
    port: int = _opt(8501, "Dashboard port", check=lambda v: 1 <= v <= 65535,
                     allowed="an integer from 1 to 65535")
    refresh_sim_seconds: float = _opt(30.0, "Live panels refresh every this many simulated seconds",
                                      check=_positive, allowed="a number > 0")
    min_refresh_seconds: float = _opt(2.0, "...but never more often than this many real seconds",
                                      check=lambda v: v >= 1, allowed="a number >= 1")
    heartbeat_stale_seconds: float = _opt(30.0, "A heartbeat older than this (real seconds) is stale",
                                          check=_positive, allowed="a number > 0")


def _port(v: int) -> bool:
    return 1 <= v <= 65535


@dataclass(frozen=True)
class MetricsSettings:
    """The detector's Prometheus /metrics endpoint (README, "Prometheus metrics")."""

    enabled: bool = _opt(True, "Serve Prometheus metrics from the detector")
    host: str = _opt("127.0.0.1", "Address /metrics binds to (keep 127.0.0.1 unless Prometheus runs elsewhere)",
                     check=lambda v: bool(v.strip()), allowed="a host name or address")
    port: int = _opt(9108, "Port of the /metrics endpoint", check=_port, allowed="an integer from 1 to 65535")


@dataclass(frozen=True)
class SupervisorSettings:
    """run_system.sh's supervisor."""

    max_restarts: int = _opt(5, "A component restarted this often within the window stays down",
                             check=_positive, allowed="an integer > 0")
    restart_window_minutes: float = _opt(10.0, "Window (real minutes) for max_restarts",
                                         check=_positive, allowed="a number > 0")
    backoff_initial_seconds: float = _opt(1.0, "First restart delay; doubles each time",
                                          check=_non_negative, allowed="a number >= 0")
    backoff_max_seconds: float = _opt(8.0, "Longest restart delay", check=_non_negative,
                                      allowed="a number >= 0")
    stop_timeout_s: float = _opt(15.0, "Seconds to wait after SIGTERM before SIGKILL",
                                 check=_positive, allowed="a number > 0")
    heartbeat_interval_seconds: float = _opt(5.0, "Real seconds between heartbeats of each component",
                                             check=_positive, allowed="a number > 0")
    hang_timeout_seconds: float = _opt(
        60.0, "A running component with no heartbeat (the dashboard: no healthy answer) for this long, in real "
        "seconds, is hung: killed and restarted like a crash. At least 3 heartbeat intervals; 0 = never",
        check=_non_negative, allowed="a number >= 0")


@dataclass(frozen=True)
class LoggingSettings:
    """Log files under logs/."""

    level: str = _opt("INFO", "Log level", choices=LOG_LEVELS)
    max_bytes: int = _opt(5_000_000, "Rotate a log file at this size", check=lambda v: v >= 10_000,
                          allowed="an integer >= 10000")
    backup_count: int = _opt(3, "Rotated files kept per component", check=_non_negative,
                             allowed="an integer >= 0")


SECTIONS: dict[str, type] = {
    "storage": StorageSettings,
    "simulation": SimulationSettings,
    "drift": DriftSettings,
    "alerts": AlertSettings,
    "model": ModelSettings,
    "dashboard": DashboardSettings,
    "metrics": MetricsSettings,
    "supervisor": SupervisorSettings,
    "logging": LoggingSettings,
}


@dataclass(frozen=True)
class Settings:
    """The one immutable settings object, built once in ``main()`` and passed down."""

    home: Path
    config_file: Path | None
    storage: StorageSettings
    simulation: SimulationSettings
    drift: DriftSettings
    alerts: AlertSettings
    model: ModelSettings
    dashboard: DashboardSettings
    metrics: MetricsSettings
    supervisor: SupervisorSettings
    logging: LoggingSettings

    @property
    def db_path(self) -> Path:
        """Absolute path of the SQLite database (``storage.database_url``'s when that is a
        ``sqlite://`` URL, else ``storage.db_path``; unused when the database is PostgreSQL)."""
        url = self.storage.database_url.strip()
        raw = url[len("sqlite:///"):] if url.startswith("sqlite:///") else self.storage.db_path
        p = Path(raw).expanduser()
        return p if p.is_absolute() else self.home / p

    @property
    def uses_postgres(self) -> bool:
        """Whether ``storage.database_url`` names a PostgreSQL server."""
        return self.storage.database_url.strip().split("://", 1)[0] in ("postgresql", "postgres")

    @property
    def database_url(self) -> str:
        """The database as a URL: the PostgreSQL URL, or ``sqlite:///`` + the absolute :attr:`db_path`.

        This is what ``rtml.storage.connect`` takes (it also takes the Settings themselves).
        """
        if self.uses_postgres:
            return self.storage.database_url.strip()
        return f"sqlite:///{self.db_path}"

    @property
    def database_label(self) -> str:
        """The database for messages: the SQLite path, or the URL without its password."""
        if not self.uses_postgres:
            return str(self.db_path)
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.database_url)
        if parts.password is None:
            return self.database_url
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def sim_start_s(self) -> float:
        """``simulation.start`` as unix seconds."""
        return parse_time(self.simulation.start)

    def replace(self, **overrides: Any) -> Settings:
        """Return a copy with dotted-key overrides applied and validated (``{"simulation.speed": 5}``)."""
        raw = as_dict(self)
        for dotted, value in overrides.items():
            section, key = _split_key(dotted)
            raw[section][key] = value
        return _build(raw, home=self.home, config_file=self.config_file, origin="override")


def db_override(value: str | None) -> dict[str, str | None]:
    """The override a ``--db`` flag means: a URL sets ``storage.database_url``, a path ``storage.db_path``.

    Examples
    --------
    >>> db_override("postgresql://rtml@db:5432/rtml")
    {'storage.database_url': 'postgresql://rtml@db:5432/rtml'}
    >>> db_override("/tmp/x.db")
    {'storage.db_path': '/tmp/x.db', 'storage.database_url': ''}
    """
    if value is None:
        return {}
    if "://" in value:
        return {"storage.database_url": value}
    return {"storage.db_path": value, "storage.database_url": ""}


def parse_time(text: str) -> float:
    """Parse an ISO 8601 time (``Z`` or an offset; naive means UTC) into unix seconds.

    Examples
    --------
    >>> parse_time("2026-01-01T00:00:00Z")
    1767225600.0
    """
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def iter_options() -> list[tuple[str, str, Any, str]]:
    """List every setting as ``(section, key, default, help)``, in declaration order."""
    rows = []
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            rows.append((section, f.name, f.default, f.metadata["help"]))
    return rows


def as_dict(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings as a plain ``{section: {key: value}}`` dictionary."""
    return {name: dataclasses.asdict(getattr(settings, name)) for name in SECTIONS}


def _split_key(dotted: str) -> tuple[str, str]:
    section, _, key = dotted.partition(".")
    if section not in SECTIONS or key not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
        raise ConfigError(f"Unknown setting '{dotted}'. Known settings: "
                          + ", ".join(f"{s}.{k}" for s, k, _, _ in iter_options()))
    return section, key


def _coerce(dotted: str, value: Any, target: type, origin: str) -> Any:
    """Turn ``value`` (from TOML, env text or a flag) into ``target`` or raise a clear error."""
    where = f" (from {origin})" if origin else ""
    if target is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{dotted} must be true or false, got {value!r}{where}")
    if target is int:
        if isinstance(value, bool):
            raise ConfigError(f"{dotted} must be an integer, got {value!r}{where}")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{dotted} must be an integer, got {value!r}{where}") from None
    if target is float:
        if isinstance(value, bool):
            raise ConfigError(f"{dotted} must be a number, got {value!r}{where}")
        try:
            number = float(str(value).strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{dotted} must be a number, got {value!r}{where}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{dotted} must be a finite number, got {value!r}{where}")
        return number
    if not isinstance(value, str):
        raise ConfigError(f"{dotted} must be text, got {value!r}{where}")
    return value


def _validate(section: str, cls: type, values: Mapping[str, Any], origins: Mapping[str, str]) -> Any:
    kwargs = {}
    types = {"int": int, "float": float, "str": str, "bool": bool}
    for f in dataclasses.fields(cls):
        dotted = f"{section}.{f.name}"
        origin = origins.get(dotted, "")
        where = f" (from {origin})" if origin else ""
        value = _coerce(dotted, values.get(f.name, f.default), types[f.type], origin)
        meta = f.metadata
        if meta["choices"] and value not in meta["choices"]:
            raise ConfigError(f"{dotted} must be one of {', '.join(meta['choices'])}, got {value!r}{where}")
        if meta["check"] is not None and not meta["check"](value):
            raise ConfigError(f"{dotted} must be {meta['allowed']}, got {value!r}{where}")
        kwargs[f.name] = value
    return cls(**kwargs)


def _build(raw: Mapping[str, Mapping[str, Any]], *, home: Path, config_file: Path | None,
           origin: str = "", origins: Mapping[str, str] | None = None) -> Settings:
    origins = dict(origins or {})
    sections = {name: _validate(name, cls, raw.get(name, {}), origins) for name, cls in SECTIONS.items()}
    sim = sections["simulation"]
    if sim.batch_min_rows > sim.batch_max_rows:
        raise ConfigError("simulation.batch_min_rows must be <= simulation.batch_max_rows, got "
                          f"{sim.batch_min_rows} > {sim.batch_max_rows}")
    if sim.mobile_share_base > sim.mobile_share_cap:
        raise ConfigError("simulation.mobile_share_base must be <= simulation.mobile_share_cap, got "
                          f"{sim.mobile_share_base} > {sim.mobile_share_cap}")
    alerts = sections["alerts"]
    if alerts.m > alerts.n:
        raise ConfigError(f"alerts.m must be <= alerts.n, got m={alerts.m}, n={alerts.n}")
    sup = sections["supervisor"]
    if sup.backoff_initial_seconds > sup.backoff_max_seconds:
        raise ConfigError("supervisor.backoff_initial_seconds must be <= supervisor.backoff_max_seconds")
    return Settings(home=home, config_file=config_file, **sections)


def load_settings(*, environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None,
                  config_file: str | Path | None = None,
                  home: str | Path | None = None) -> Settings:
    """Load and validate the settings from every source.

    Parameters
    ----------
    environ : mapping, default=None
        The process environment (``os.environ`` from ``main()``); ``RTML_HOME``, ``RTML_CONFIG``
        and ``RTML_<SECTION>_<KEY>`` are read from it. ``None`` means an empty environment.
    overrides : mapping, default=None
        Command-line values keyed ``"section.key"``; ``None`` values are ignored.
    config_file : str or Path, default=None
        The TOML file; defaults to ``RTML_CONFIG`` or ``config.toml`` in the home (a missing
        default file is fine, a missing named file is an error).
    home : str or Path, default=None
        The instance directory; defaults to ``RTML_HOME`` or the project directory.

    Returns
    -------
    Settings

    Raises
    ------
    ConfigError
        When a file, key or value is invalid; the message names it and what is allowed.

    Examples
    --------
    >>> s = load_settings(environ={"RTML_SIMULATION_SPEED": "5"}, config_file="/dev/null")
    >>> s.simulation.speed
    5.0
    >>> load_settings(environ={"RTML_SIMULATION_SPEED": "fast"}, config_file="/dev/null")
    Traceback (most recent call last):
    ...
    rtml.config.ConfigError: simulation.speed must be a number, got 'fast' (from RTML_SIMULATION_SPEED)
    """
    env = dict(environ or {})
    home_path = Path(home or env.get("RTML_HOME") or PROJECT_DIR).expanduser().resolve()
    named = config_file or env.get("RTML_CONFIG")
    path = Path(named).expanduser() if named else home_path / "config.toml"
    if not path.is_absolute() and named:
        path = Path.cwd() / path
    if not path.exists() and not named and home_path != PROJECT_DIR:
        path = PROJECT_DIR / "config.toml"  # an instance home without its own file uses the project's
    raw: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    origins: dict[str, str] = {}
    if path.exists():
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"Cannot read configuration file {path}: {exc}") from None
        for section, table in data.items():
            if section not in SECTIONS or not isinstance(table, dict):
                raise ConfigError(f"Unknown section [{section}] in {path}. Known sections: "
                                  + ", ".join(SECTIONS))
            for key, value in table.items():
                _split_key(f"{section}.{key}")
                raw[section][key] = value
                origins[f"{section}.{key}"] = str(path)
    elif named:
        raise ConfigError(f"Configuration file {path} does not exist (set by RTML_CONFIG or --config); "
                          "create it or point RTML_CONFIG at an existing file")
    known = {f"RTML_{s}_{k}".upper(): (s, k) for s, k, _, _ in iter_options()}
    for name, value in env.items():
        if name in known:
            section, key = known[name]
            raw[section][key] = value
            origins[f"{section}.{key}"] = name
        elif name.startswith("RTML_") and name.split("_")[1].lower() in SECTIONS:
            raise ConfigError(f"Unknown setting in environment variable {name}. Known: "
                              + ", ".join(sorted(known)))
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, key = _split_key(dotted)
        raw[section][key] = value
        origins[dotted] = "command line"
    return _build(raw, home=home_path, config_file=path if path.exists() else None, origins=origins)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def render_default_toml() -> str:
    """Render every setting with its default and help as a commented ``config.toml``."""
    lines = ["# rtml configuration: every key with its default. Override any key with the",
             "# environment variable RTML_<SECTION>_<KEY> (e.g. RTML_SIMULATION_SPEED=10) or a",
             "# command-line flag. Point RTML_CONFIG at another file to use it instead of this one."]
    for section, cls in SECTIONS.items():
        lines += ["", f"[{section}]", f"# {cls.__doc__.strip()}"]
        for f in dataclasses.fields(cls):
            meta = f.metadata
            allowed = ", ".join(meta["choices"]) if meta["choices"] else meta["allowed"]
            lines.append(f"# {meta['help']}" + (f" ({allowed})" if allowed else ""))
            lines.append(f"{f.name} = {_toml_value(f.default)}")
    return "\n".join(lines) + "\n"


def render_markdown_table() -> str:
    """Render the README's configuration table (key, default, environment variable, meaning)."""
    rows = ["| key | default | environment variable | meaning |", "|---|---|---|---|"]
    for section, key, default, help_text in iter_options():
        rows.append(f"| `{section}.{key}` | `{_toml_value(default)}` | `RTML_{section.upper()}_{key.upper()}` "
                    f"| {help_text.replace('|', '/')} |")
    return "\n".join(rows)


README_TABLE_START = "<!-- config-table:start -->"
README_TABLE_END = "<!-- config-table:end -->"


def update_docs(project_dir: Path = PROJECT_DIR) -> None:
    """Rewrite ``config.toml`` and the README's configuration table from the declarations above."""
    (project_dir / "config.toml").write_text(render_default_toml())
    readme = project_dir / "README.md"
    text = readme.read_text()
    head, _, rest = text.partition(README_TABLE_START)
    _, _, tail = rest.partition(README_TABLE_END)
    readme.write_text(f"{head}{README_TABLE_START}\n{render_markdown_table()}\n{README_TABLE_END}{tail}")


if __name__ == "__main__":  # python -m rtml.config: regenerate config.toml and the README table
    update_docs()
