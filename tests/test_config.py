"""Configuration: precedence, every validation error, and the README/config.toml documentation."""

from __future__ import annotations

import re
import subprocess

import pytest

from rtml.config import ConfigError, iter_options, load_settings, render_default_toml
from tests.conftest import PROJECT, PYTHON


def test_defaults_load_without_any_file(tmp_path):
    s = load_settings(environ={}, home=tmp_path, config_file=PROJECT / "config.toml")
    assert s.simulation.speed == 1.0
    assert s.drift.policy == "calibrated"
    assert s.dashboard.host == "127.0.0.1"
    assert s.db_path == tmp_path / "data" / "monitoring.db"


def test_precedence_defaults_file_env_cli(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[simulation]\nspeed = 2.0\nseed = 7\n[drift]\nbins = 12\n")
    s = load_settings(environ={}, home=tmp_path, config_file=cfg)
    assert (s.simulation.speed, s.simulation.seed, s.drift.bins) == (2.0, 7, 12)
    s = load_settings(environ={"RTML_SIMULATION_SPEED": "3"}, home=tmp_path, config_file=cfg)
    assert (s.simulation.speed, s.simulation.seed) == (3.0, 7)
    s = load_settings(environ={"RTML_SIMULATION_SPEED": "3"}, home=tmp_path, config_file=cfg,
                      overrides={"simulation.speed": "4", "simulation.seed": None})
    assert (s.simulation.speed, s.simulation.seed) == (4.0, 7)


def test_rtml_config_and_home_from_environment(tmp_path):
    cfg = tmp_path / "other.toml"
    cfg.write_text("[dashboard]\nport = 9000\n")
    s = load_settings(environ={"RTML_CONFIG": str(cfg), "RTML_HOME": str(tmp_path)})
    assert s.dashboard.port == 9000 and s.home == tmp_path.resolve() and s.config_file == cfg


def test_replace_validates(tmp_path):
    s = load_settings(environ={}, home=tmp_path, config_file=PROJECT / "config.toml")
    assert s.replace(**{"model.n_estimators": 5}).model.n_estimators == 5
    with pytest.raises(ConfigError, match="model.n_estimators must be an integer > 0, got 0"):
        s.replace(**{"model.n_estimators": 0})


@pytest.mark.parametrize("env, message", [
    ({"RTML_SIMULATION_SPEED": "fast"}, r"simulation.speed must be a number, got 'fast' \(from RTML_SIMULATION_SPEED\)"),
    ({"RTML_SIMULATION_SPEED": "0"}, r"simulation.speed must be a number > 0, got 0.0"),
    ({"RTML_SIMULATION_SPEED": "nan"}, r"simulation.speed must be a finite number"),
    ({"RTML_SIMULATION_SEED": "1.5"}, r"simulation.seed must be an integer, got '1.5'"),
    ({"RTML_SIMULATION_SCENARIO": "wild"}, r"simulation.scenario must be one of none, gradual, sudden, recurring, got 'wild'"),
    ({"RTML_SIMULATION_START": "yesterday"}, r"simulation.start must be an ISO 8601 time"),
    ({"RTML_DRIFT_POLICY": "strict"}, r"drift.policy must be one of seed, calibrated"),
    ({"RTML_DRIFT_FALSE_ALARM_RATE": "0.7"}, r"drift.false_alarm_rate must be a number in \(0, 0.5\), got 0.7"),
    ({"RTML_DRIFT_BINS": "1"}, r"drift.bins must be an integer >= 2, got 1"),
    ({"RTML_DASHBOARD_PORT": "70000"}, r"dashboard.port must be an integer from 1 to 65535, got 70000"),
    ({"RTML_MODEL_DECISION_METRIC": "auc"}, r"model.decision_metric must be one of roc_auc, accuracy"),
    ({"RTML_LOGGING_LEVEL": "LOUD"}, r"logging.level must be one of DEBUG, INFO, WARNING, ERROR"),
    ({"RTML_SIMULATION_BATCH_MIN_ROWS": "200"}, r"batch_min_rows must be <= simulation.batch_max_rows"),
    ({"RTML_ALERTS_M": "4"}, r"alerts.m must be <= alerts.n, got m=4, n=3"),
    ({"RTML_SIMULATION_SPEEED": "2"}, r"Unknown setting in environment variable RTML_SIMULATION_SPEEED"),
])
def test_every_validation_error_names_key_value_and_allowed(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env, home=tmp_path, config_file=PROJECT / "config.toml")


def test_every_option_has_a_validation_message(tmp_path):
    """Each numeric/text option rejects a value of the wrong type with its own key in the message."""
    for section, key, default, _ in iter_options():
        if isinstance(default, str):
            continue
        env = {f"RTML_{section.upper()}_{key.upper()}": "not-a-number"}
        with pytest.raises(ConfigError, match=re.escape(f"{section}.{key} must be")):
            load_settings(environ=env, home=tmp_path, config_file=PROJECT / "config.toml")


def test_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[simulation\nspeed = 1")
    with pytest.raises(ConfigError, match="Cannot read configuration file"):
        load_settings(environ={}, home=tmp_path, config_file=bad)
    bad.write_text("[simulaton]\nspeed = 1\n")
    with pytest.raises(ConfigError, match=r"Unknown section \[simulaton\]"):
        load_settings(environ={}, home=tmp_path, config_file=bad)
    bad.write_text("[simulation]\nsped = 1\n")
    with pytest.raises(ConfigError, match="Unknown setting 'simulation.sped'"):
        load_settings(environ={}, home=tmp_path, config_file=bad)
    bad.write_text('[simulation]\nspeed = "fast"\n')
    with pytest.raises(ConfigError, match=r"simulation.speed must be a number, got 'fast' \(from .*bad.toml\)"):
        load_settings(environ={}, home=tmp_path, config_file=bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"RTML_CONFIG": str(tmp_path / "missing.toml")}, home=tmp_path)


def test_config_toml_is_the_rendered_defaults():
    assert (PROJECT / "config.toml").read_text() == render_default_toml(), \
        "config.toml is stale: regenerate it with rtml.config.render_default_toml()"


def test_every_setting_is_in_the_readme_table():
    readme = (PROJECT / "README.md").read_text()
    missing = [f"{s}.{k}" for s, k, _, _ in iter_options() if f"| `{s}.{k}` |" not in readme]
    assert not missing, f"settings missing from README's configuration table: {missing}"


def test_bad_value_exits_2_with_message(tmp_path):
    proc = subprocess.run([PYTHON, str(PROJECT / "data_generator.py"), "--speed", "fast", "--replay", "1"],
                          env={"RTML_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "simulation.speed must be a number, got 'fast' (from command line)" in proc.stderr
    assert not (tmp_path / "data").exists()
