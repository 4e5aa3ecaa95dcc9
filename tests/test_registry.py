"""Model registry: atomic files, verified loads, the first model, promotions, rollback, versions."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from rtml import modeling, registry
from rtml.generator import Generator
from rtml.storage import connect
from rtml.storage import models as store
from rtml.storage.interactions import read_window
from rtml.storage.monitoring import recent_alerts
from tests.conftest import make_settings

SMALL = {"model.n_estimators": 10, "model.max_depth": 5, "simulation.n_customers": 500,
         "simulation.batch_min_rows": 5, "simulation.batch_max_rows": 10}


@pytest.fixture
def env(backend):
    settings = backend.settings(**SMALL)
    conn = connect(settings)
    gen = Generator(settings, conn)
    gen.backfill_baseline()
    yield settings, conn, gen
    conn.close()


def small_model(settings, conn, *, seed=1):
    frame = read_window(conn, start_s=settings.sim_start_s - 7 * 86400, end_s=settings.sim_start_s)
    return modeling.train(frame, model_settings=settings.model, seed=seed)


def promote(settings, conn, model, *, now_s, promote=True, reason="test"):
    champion = store.read_champion(conn)
    return registry.record_challenger(settings, conn, model=model, now_s=now_s, train_start=now_s - 3600,
                                      train_end=now_s - 600, n_train=100, metrics={"roc_auc": 0.7},
                                      promote=promote, reason=reason,
                                      champion_version=champion.version if champion else None)


def test_save_model_file_is_atomic_and_hashed(env):
    settings, conn, _ = env
    model = small_model(settings, conn)
    path, sha = registry.save_model_file(settings.models_dir, "v1.3", model)
    assert path.name == "model-v1.3.joblib"
    assert [p.name for p in settings.models_dir.iterdir()] == ["model-v1.3.joblib"]  # no temp file left
    import hashlib
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha


def test_ensure_initial_model_trains_v1_0_on_the_baseline(env):
    settings, conn, _ = env
    row = registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    assert (row.version, row.status, row.file) == ("v1.0", "champion", "model-v1.0.joblib")
    assert row.train_start == pytest.approx(settings.sim_start_s - 7 * 86400)
    assert row.train_start < row.train_end < settings.sim_start_s
    assert row.features == list(modeling.FEATURES)
    assert set(row.library_versions) >= {"sklearn", "numpy", "joblib", "python"}
    assert 0.55 < row.metrics["roc_auc"] < 0.9 and row.metrics["holdout_start"] == row.train_end
    assert row.n_train == int(0.8 * settings.simulation.baseline_rows)
    assert [e.event for e in store.recent_events(conn)] == ["promoted", "trained"]
    again = registry.ensure_initial_model(settings, conn)
    assert again.sha256 == row.sha256 and len(store.list_models(conn)) == 1
    model = registry.verify_model_file(settings.models_dir, row)
    assert model.named_steps["forest"].n_estimators == 10


def test_ensure_initial_model_needs_the_baseline(backend):
    settings = backend.settings(**SMALL)
    conn = connect(settings)
    with pytest.raises(registry.RegistryError, match="backfill"):
        registry.ensure_initial_model(settings, conn)


@pytest.mark.parametrize("damage, message", [
    ("corrupt", "sha256"), ("missing", "cannot read"), ("sklearn", "library versions differ"),
    ("features", "feature list")])
def test_verification_refuses_bad_files(env, damage, message):
    settings, conn, _ = env
    row = registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    path = settings.models_dir / row.file
    if damage == "corrupt":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "missing":
        path.unlink()
    elif damage == "sklearn":
        row = dataclasses.replace(row, library_versions=dict(row.library_versions, sklearn="0.24.2"))
    else:
        row = dataclasses.replace(row, features=row.features[:-1])
    with pytest.raises(registry.ModelVerificationError, match=message):
        registry.verify_model_file(settings.models_dir, row)


def test_refusal_is_alerted_and_recorded(env):
    settings, conn, _ = env
    row = registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    (settings.models_dir / row.file).write_bytes(b"not a model")
    with pytest.raises(registry.ModelVerificationError):
        registry.load_verified(settings, conn, row, now_s=settings.sim_start_s + 60)
    alert = recent_alerts(conn, limit=1)[0]
    assert (alert.severity, alert.source) == ("critical", "model") and "v1.0" in alert.message
    event = store.recent_events(conn, limit=1)[0]
    assert (event.event, event.version) == ("refused", "v1.0") and "sha256" in event.reason


def test_library_version_rule():
    running = registry.library_versions()
    assert registry.check_library_versions(running) == []
    major, minor = running["sklearn"].split(".")[:2]
    assert registry.check_library_versions(dict(running, sklearn=f"{major}.{minor}.99")) == []
    assert registry.check_library_versions(dict(running, sklearn=f"{major}.{int(minor) + 1}.0"))
    assert registry.check_library_versions(dict(running, numpy="1.26.4"))


def test_promotion_archives_the_old_champion(env):
    settings, conn, _ = env
    registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    row = promote(settings, conn, small_model(settings, conn, seed=2), now_s=settings.sim_start_s + 3600)
    assert (row.version, row.status) == ("v1.1", "champion")
    assert store.read_model(conn, "v1.0").status == "archived"
    assert store.read_champion(conn).version == "v1.1"
    rejected = promote(settings, conn, small_model(settings, conn, seed=3), now_s=settings.sim_start_s + 7200,
                       promote=False, reason="worse")
    assert (rejected.version, rejected.status, rejected.reason) == ("v1.2", "rejected", "worse")
    assert store.read_champion(conn).version == "v1.1"
    kinds = [(e.event, e.version, e.from_version) for e in store.recent_events(conn, limit=4)]
    assert kinds == [("rejected", "v1.2", "v1.1"), ("trained", "v1.2", "v1.1"), ("promoted", "v1.1", "v1.0"),
                     ("trained", "v1.1", "v1.0")]


def test_challenger_compared_with_a_replaced_champion_is_not_promoted(env):
    settings, conn, _ = env
    registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    model = small_model(settings, conn, seed=2)
    row = registry.record_challenger(settings, conn, model=model, now_s=settings.sim_start_s, train_start=0.0,
                                     train_end=1.0, n_train=1, metrics={}, promote=True, reason="better",
                                     champion_version="v0.9")
    assert row.status == "rejected" and "champion changed" in row.reason
    assert store.read_champion(conn).version == "v1.0"


def test_versions_pass_v1_9_to_v1_10(env):
    settings, conn, _ = env
    registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    model = small_model(settings, conn, seed=2)
    versions = [promote(settings, conn, model, now_s=settings.sim_start_s + i, promote=i % 2 == 0).version
                for i in range(1, 12)]
    assert versions[8:] == ["v1.9", "v1.10", "v1.11"]
    assert store.latest_version(conn) == "v1.11"
    assert (settings.models_dir / "model-v1.10.joblib").exists()
    assert store.read_model(conn, "v1.10").minor == 10


def test_rollback_round_trip(env):
    settings, conn, _ = env
    registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    promote(settings, conn, small_model(settings, conn, seed=2), now_s=settings.sim_start_s + 60)
    row = registry.rollback(settings, conn, actor="alice", reason="bad predictions", now_s=settings.sim_start_s + 120)
    assert (row.version, row.status) == ("v1.0", "champion")
    assert store.read_model(conn, "v1.1").status == "archived"
    event = store.recent_events(conn, limit=1)[0]
    assert (event.event, event.version, event.from_version, event.actor, event.reason) == (
        "rolled_back", "v1.0", "v1.1", "alice", "bad predictions")
    row = registry.rollback(settings, conn, "v1.1", actor="bob", reason="fixed", now_s=settings.sim_start_s + 180)
    assert row.version == "v1.1" and store.read_model(conn, "v1.0").status == "archived"
    assert [m.version for m in store.list_models(conn) if m.status == "champion"] == ["v1.1"]


def test_rollback_errors_change_nothing(env):
    settings, conn, _ = env
    with pytest.raises(registry.RegistryError, match="no champion"):
        registry.rollback(settings, conn, now_s=0.0)
    registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    with pytest.raises(registry.RegistryError, match="no previous champion"):
        registry.rollback(settings, conn, now_s=0.0)
    with pytest.raises(registry.RegistryError, match="already the champion"):
        registry.rollback(settings, conn, "v1.0", now_s=0.0)
    with pytest.raises(registry.RegistryError, match="Unknown model version v9.9"):
        registry.rollback(settings, conn, "v9.9", now_s=0.0)
    with pytest.raises(registry.RegistryError, match="Unknown model version 'latest'"):
        registry.rollback(settings, conn, "latest", now_s=0.0)
    promote(settings, conn, small_model(settings, conn, seed=2), now_s=settings.sim_start_s + 60)
    (settings.models_dir / "model-v1.0.joblib").write_bytes(b"garbage")
    n_events = store.last_event_id(conn)
    with pytest.raises(registry.RegistryError, match="Cannot roll back to v1.0: .*sha256"):
        registry.rollback(settings, conn, now_s=0.0)
    assert store.read_champion(conn).version == "v1.1" and store.last_event_id(conn) == n_events


def test_load_champion_falls_back_to_the_last_good_one(env):
    settings, conn, _ = env
    registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    promote(settings, conn, small_model(settings, conn, seed=2), now_s=settings.sim_start_s + 60)
    (settings.models_dir / "model-v1.1.joblib").unlink()
    loaded = registry.load_champion(settings, conn, now_s=settings.sim_start_s + 120)
    assert loaded.version == "v1.0"
    assert [a.source for a in recent_alerts(conn)] == ["model"]


def test_champion_reference_is_the_training_window(env):
    settings, conn, _ = env
    row = registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    frame, start, end, version = registry.champion_reference(conn, settings)
    assert (start, end, version) == (row.train_start, row.train_end, "v1.0")
    assert len(frame) == row.n_train
    assert frame["event_time"].min() >= start and frame["event_time"].max() < end
    assert set(modeling.FEATURES) <= set(frame.names)
    capped = settings.replace(**{"model.max_train_rows": 500})
    a, *_ = registry.champion_reference(conn, capped)
    b, *_ = registry.champion_reference(conn, capped)
    assert len(a) == 500 and a.equals(b)


def test_champion_reference_outlives_retention(env):
    """The reference is stored with the model: deleting its interactions does not empty it."""
    settings, conn, _ = env
    registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    before, *_ = registry.champion_reference(conn, settings)
    with store.transaction(conn):
        conn.execute("DELETE FROM interactions")
    after, start, end, version = registry.champion_reference(conn, settings)
    assert version == "v1.0" and len(after) == len(before) > 0
    assert len(after) == len(before)
    assert all(np.array_equal(after[c], before[c]) for c in modeling.FEATURES)


def test_registry_row_columns_are_json(env):
    settings, conn, _ = env
    registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    features, libs, metrics = conn.execute(
        "SELECT features, library_versions, metrics FROM models WHERE version = ?", ("v1.0",)).fetchone()
    assert json.loads(features) == list(modeling.FEATURES)
    assert "sklearn" in json.loads(libs) and "roc_auc" in json.loads(metrics)


def _make_legacy(conn, version: str) -> None:
    """Turn ``version``'s row into one an earlier rtml wrote (no model_input; pandas recorded)."""
    import json as _json

    from rtml.storage import transaction
    stored = _json.loads(conn.execute("SELECT library_versions FROM models WHERE version = ?",
                                      (version,)).fetchone()[0])
    stored.pop("model_input")
    stored["pandas"] = "3.1.1"
    with transaction(conn):
        conn.execute("UPDATE models SET library_versions = ? WHERE version = ?", (_json.dumps(stored), version))


def test_a_legacy_champion_is_refused_then_replaced_by_a_retrained_copy(env):
    """After an upgrade the DataFrame-input champion is retrained on its own window and promoted."""
    settings, conn, _ = env
    old = registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    _make_legacy(conn, "v1.0")
    legacy = store.read_champion(conn)
    assert registry.is_legacy(legacy) and not registry.is_legacy(old)
    with pytest.raises(registry.ModelVerificationError, match="earlier rtml.*pandas"):
        registry.verify_model_file(settings.models_dir, legacy)
    new = registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s + 60)
    assert (new.version, new.status, new.train_start) == ("v1.1", "champion", legacy.train_start)
    assert new.train_end < legacy.train_end and not registry.is_legacy(new)
    assert "retrained on its own training window" in new.reason
    assert {m.version: m.status for m in store.list_models(conn)} == {"v1.0": "archived", "v1.1": "champion"}
    assert registry.load_champion(settings, conn, now_s=settings.sim_start_s + 60).version == "v1.1"
    assert registry.ensure_initial_model(settings, conn).version == "v1.1"  # done once


def test_a_legacy_champion_whose_window_is_gone_is_a_clear_error(env):
    settings, conn, _ = env
    registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    _make_legacy(conn, "v1.0")
    from rtml.storage import transaction
    with transaction(conn):
        conn.execute("DELETE FROM interactions")
    with pytest.raises(registry.RegistryError, match="retention.*reset"):
        registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s + 60)
    assert store.read_champion(conn).version == "v1.0"  # nothing half-done
