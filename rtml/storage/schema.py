"""The whole database schema in one place: numbered migrations keyed on the schema version.

The version is ``PRAGMA user_version`` on SQLite and the ``schema_version`` table on PostgreSQL;
the statements are written in SQLite's dialect and translated for PostgreSQL by
:func:`rtml.storage.db.postgres_ddl` (REAL → DOUBLE PRECISION, INTEGER → BIGINT, AUTOINCREMENT →
identity).

Migration ``i`` (1-based) brings a database from version ``i - 1`` to ``i``. Never edit a
migration that has shipped; append a new one.
"""

from __future__ import annotations

from rtml.features import CATEGORICAL_FEATURES, NUMERICAL_FEATURES

_FEATURE_COLUMNS = ",\n    ".join(
    [f"{name} REAL" for name in NUMERICAL_FEATURES] + [f"{name} TEXT" for name in CATEGORICAL_FEATURES])

MIGRATIONS: tuple[str, ...] = (
    # 1: the seed system's tables.
    f"""
CREATE TABLE interactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id INTEGER NOT NULL,
    event_time REAL NOT NULL,
    customer_id INTEGER NOT NULL,
    {_FEATURE_COLUMNS},
    converted INTEGER NOT NULL,
    drift_intensity REAL NOT NULL
);
CREATE INDEX interactions_event_time ON interactions (event_time);

CREATE TABLE generator_batches (
    batch_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    first_tick INTEGER,
    n_ticks INTEGER,
    sim_start REAL NOT NULL,
    sim_end REAL NOT NULL,
    n_rows INTEGER NOT NULL,
    first_id INTEGER,
    last_id INTEGER,
    real_time REAL NOT NULL
);
CREATE INDEX generator_batches_sim_end ON generator_batches (sim_end);

CREATE TABLE customers (
    slot INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    base_age REAL NOT NULL,
    region INTEGER NOT NULL,
    segment INTEGER NOT NULL,
    price_sensitivity REAL NOT NULL,
    visit_rate REAL NOT NULL,
    propensity REAL NOT NULL,
    signup_time REAL NOT NULL,
    previous_purchases INTEGER NOT NULL,
    last_visit_time REAL NOT NULL
);

CREATE TABLE sim_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE heartbeats (
    component TEXT PRIMARY KEY,
    pid INTEGER,
    real_time REAL NOT NULL,
    sim_time REAL,
    speed REAL,
    started_at REAL,
    state TEXT NOT NULL,
    details TEXT
);

CREATE TABLE predictions (
    interaction_id INTEGER PRIMARY KEY,
    event_time REAL NOT NULL,
    model_version TEXT NOT NULL,
    probability REAL NOT NULL,
    predicted INTEGER NOT NULL,
    scored_at REAL NOT NULL
);
CREATE INDEX predictions_event_time ON predictions (event_time);

CREATE TABLE detector_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE drift_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    checked_at REAL NOT NULL,
    real_time REAL NOT NULL,
    window_start REAL,
    window_end REAL,
    reference_start REAL,
    reference_end REAL,
    reference_version TEXT,
    n_reference INTEGER NOT NULL,
    n_current INTEGER NOT NULL,
    policy TEXT NOT NULL,
    dataset_drift INTEGER NOT NULL,
    n_drifted INTEGER NOT NULL,
    n_features INTEGER NOT NULL,
    share_drifted REAL NOT NULL,
    status TEXT NOT NULL,
    true_intensity REAL
);
CREATE INDEX drift_checks_checked_at ON drift_checks (checked_at);

CREATE TABLE drift_results (
    check_id INTEGER NOT NULL REFERENCES drift_checks (id) ON DELETE CASCADE,
    feature TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    drifted INTEGER NOT NULL,
    psi REAL,
    ks_statistic REAL,
    ks_pvalue REAL,
    js_distance REAL,
    chi2_statistic REAL,
    chi2_pvalue REAL,
    missing_rate_reference REAL,
    missing_rate_current REAL,
    min_detectable_shift REAL,
    thresholds TEXT,
    details TEXT,
    PRIMARY KEY (check_id, feature)
);
CREATE INDEX drift_results_feature ON drift_results (feature, check_id);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    real_time REAL NOT NULL,
    severity TEXT NOT NULL,
    source TEXT NOT NULL,
    message TEXT NOT NULL,
    details TEXT,
    check_id INTEGER
);
CREATE INDEX alerts_created_at ON alerts (created_at);
CREATE INDEX alerts_real_time ON alerts (real_time);

CREATE TABLE models (
    version TEXT PRIMARY KEY,
    major INTEGER NOT NULL,
    minor INTEGER NOT NULL,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    promoted_at REAL,
    train_start REAL,
    train_end REAL,
    n_train INTEGER,
    features TEXT NOT NULL,
    library_versions TEXT NOT NULL,
    metrics TEXT,
    status TEXT NOT NULL,
    reason TEXT
);
CREATE UNIQUE INDEX models_major_minor ON models (major, minor);

CREATE TABLE model_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    real_time REAL NOT NULL,
    event TEXT NOT NULL,
    version TEXT,
    from_version TEXT,
    actor TEXT NOT NULL,
    reason TEXT,
    details TEXT
);
CREATE INDEX model_events_at ON model_events (at);

CREATE TABLE performance (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    window_start REAL NOT NULL,
    window_end REAL NOT NULL,
    model_version TEXT NOT NULL,
    n_rows INTEGER NOT NULL,
    base_rate REAL,
    accuracy REAL,
    roc_auc REAL,
    precision REAL,
    recall REAL,
    f1 REAL,
    log_loss REAL,
    brier REAL,
    computed_at REAL NOT NULL
);
CREATE INDEX performance_window_end ON performance (window_end);
""",
    # 2: indexes for the dashboard's champion lookup and "first drifted check" query.
    """
CREATE INDEX models_status ON models (status);
CREATE INDEX drift_checks_true_drift ON drift_checks (checked_at) WHERE true_intensity > 0;
""",
    # 3: each champion's drift reference, kept as a sample so that interaction retention can
    # never empty it (a champion may serve longer than retention_days).
    f"""
CREATE TABLE model_references (
    version TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_time REAL NOT NULL,
    {_FEATURE_COLUMNS},
    drift_intensity REAL,
    PRIMARY KEY (version, seq)
);
""",
)

SCHEMA_VERSION = len(MIGRATIONS)

#: Every table the migrations create, children before parents (``drop_schema`` drops in this order).
TABLES = ("drift_results", "drift_checks", "interactions", "generator_batches", "customers", "sim_state",
          "heartbeats", "predictions", "detector_state", "alerts", "models", "model_events", "performance",
          "model_references")
