"""`drift_detector.py check`: outputs, exit codes and every bad-input message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rtml import check_cli

PROJECT = Path(__file__).resolve().parent.parent


def frame(n: int, seed: int, *, shift: float = 0.0, mobile: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.normal(40 + 10 * shift, 10, n).round(),
        "amount": rng.lognormal(3, 1, n),
        "clicks": rng.poisson(3, n),
        "device": rng.choice(["desktop", "mobile", "tablet"], n, p=[0.9 - mobile, mobile, 0.1]),
        "flag": rng.random(n) < 0.2,
    })


@pytest.fixture(autouse=True)
def _config(tmp_path, monkeypatch):
    """The project's config.toml, a throw-away home, no stray RTML_* variables."""
    for key in list(os.environ):
        if key.startswith("RTML_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RTML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RTML_CONFIG", str(PROJECT / "config.toml"))


@pytest.fixture
def files(tmp_path):
    paths = {"ref": tmp_path / "ref.csv", "same": tmp_path / "same.csv", "drift": tmp_path / "drift.csv",
             "ref_pq": tmp_path / "ref.parquet", "drift_pq": tmp_path / "drift.parquet"}
    ref = frame(3000, 1)
    ref.to_csv(paths["ref"], index=False)
    ref.to_parquet(paths["ref_pq"], index=False)
    frame(600, 2).to_csv(paths["same"], index=False)
    drifted = frame(600, 3, shift=0.6, mobile=0.6)
    drifted.to_csv(paths["drift"], index=False)
    drifted.to_parquet(paths["drift_pq"], index=False)
    return paths


def run(capsys, *args) -> tuple[int, str, str]:
    code = check_cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------


def test_table_on_unchanged_data_exits_0(capsys, files):
    code, out, err = run(capsys, "--reference", files["ref"], "--current", files["same"])
    assert code == 0
    assert "Dataset drift: no" in out
    for name in ("age", "amount", "clicks", "device", "flag"):
        assert name in out
    assert err == ""


def test_fail_on_drift_exits_1_only_when_drifted(capsys, files):
    code, out, _ = run(capsys, "--reference", files["ref"], "--current", files["drift"], "--fail-on-drift")
    assert code == 1 and "Dataset drift: YES" in out
    code, _, _ = run(capsys, "--reference", files["ref"], "--current", files["drift"])
    assert code == 0  # drift found, but no --fail-on-drift
    code, _, _ = run(capsys, "--reference", files["ref"], "--current", files["same"], "--fail-on-drift")
    assert code == 0


def test_json_schema(capsys, files):
    code, out, _ = run(capsys, "--reference", files["ref_pq"], "--current", files["drift_pq"], "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= {"schema_version", "dataset_drift", "status", "n_drifted", "n_features", "share_drifted",
                        "policy", "reference", "current", "ignored", "warnings", "features"}
    assert doc["schema_version"] == 1 and doc["dataset_drift"] is True and doc["status"] == "ok"
    assert doc["policy"]["name"] == "calibrated" and "false_alarm_rate" in doc["policy"]["params"]
    assert doc["reference"] == {"path": str(files["ref_pq"]), "n_rows": 3000}
    assert doc["current"]["n_rows"] == 600
    by_name = {f["feature"]: f for f in doc["features"]}
    assert list(by_name) == ["age", "amount", "clicks", "device", "flag"]
    assert by_name["age"]["kind"] == "numerical" and by_name["clicks"]["kind"] == "numerical"
    assert by_name["device"]["kind"] == "categorical" and by_name["flag"]["kind"] == "categorical"
    age, device = by_name["age"], by_name["device"]
    for key in ("psi", "js_distance", "ks_statistic", "ks_pvalue", "min_detectable_shift"):
        assert isinstance(age[key], float)
    assert age["chi2_pvalue"] is None and isinstance(device["chi2_pvalue"], float)
    assert set(age["thresholds"]) == {"ks_pvalue", "psi", "js_distance", "ks_statistic"}
    assert age["drifted"] is True and age["evidence"]["statistic"] in ("psi", "js_distance", "ks_statistic")
    assert device["drifted"] is True
    assert doc["n_drifted"] == sum(f["drifted"] for f in doc["features"])


def test_seed_policy_flag(capsys, files):
    code, out, _ = run(capsys, "--reference", files["ref"], "--current", files["same"], "--format", "json",
                       "--policy", "seed")
    assert code == 0
    doc = json.loads(out)
    assert doc["policy"]["name"] == "seed"
    assert set(doc["features"][0]["thresholds"]) == {"psi", "ks_pvalue", "js_distance"}


def test_config_thresholds_are_used(capsys, files, monkeypatch):
    monkeypatch.setenv("RTML_DRIFT_FALSE_ALARM_RATE", "0.05")
    _, out, _ = run(capsys, "--reference", files["ref"], "--current", files["same"], "--format", "json")
    assert json.loads(out)["policy"]["params"]["false_alarm_rate"] == 0.05


def test_html_report_is_one_self_contained_file(capsys, files, tmp_path):
    target = tmp_path / "report.html"
    code, out, err = run(capsys, "--reference", files["ref"], "--current", files["drift"], "--format", "html",
                         "--output", target)
    assert code == 0 and out == "" and "report written" in err
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 5
    assert "Dataset drift: YES" in page and "KS p-value" in page and "chi-square p-value" in page
    assert "<script src" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # atomic write left no temp file


def test_json_to_output_file(capsys, files, tmp_path):
    target = tmp_path / "out.json"
    code, out, _ = run(capsys, "--reference", files["ref"], "--current", files["same"], "--format", "json",
                       "--output", target)
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["dataset_drift"] is False


def test_categorical_override_and_ignore(capsys, files):
    code, out, _ = run(capsys, "--reference", files["ref"], "--current", files["same"], "--format", "json",
                       "--categorical", "clicks", "--ignore", "amount")
    assert code == 0
    doc = json.loads(out)
    kinds = {f["feature"]: f["kind"] for f in doc["features"]}
    assert kinds["clicks"] == "categorical" and "amount" not in kinds and doc["ignored"] == ["amount"]


def test_tiny_current_reports_not_enough_data(capsys, files, tmp_path):
    tiny = tmp_path / "tiny.csv"
    frame(10, 5).to_csv(tiny, index=False)
    code, out, err = run(capsys, "--reference", files["ref"], "--current", tiny, "--format", "json")
    assert code == 0
    assert json.loads(out)["status"] == "not_enough_data" and "not enough data" in err


# ------------------------------------------------------------------------------------------
# Errors: exit 2 with a message naming the problem
# ------------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def expect_error(capsys, args, *fragments):
    code, out, err = run(capsys, *args)
    assert code == 2, err
    assert out == ""
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_missing_file(capsys, files, tmp_path):
    expect_error(capsys, ["--reference", tmp_path / "nope.csv", "--current", files["same"]],
                 "reference file", "nope.csv", "does not exist")
    expect_error(capsys, ["--reference", files["ref"], "--current", tmp_path / "nope.parquet"],
                 "current file", "does not exist")


def test_unknown_format(capsys, files, tmp_path):
    expect_error(capsys, ["--reference", write(tmp_path / "ref.txt", "a\n1\n"), "--current", files["same"]],
                 "cannot tell the format", ".csv", ".parquet")


def test_unreadable_parquet(capsys, files, tmp_path):
    bad = write(tmp_path / "bad.parquet", "this is not parquet")
    expect_error(capsys, ["--reference", files["ref"], "--current", bad], "cannot read current file", "PARQUET")


def test_unreadable_csv(capsys, files, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n1,2\n3,4,5,6\n")
    expect_error(capsys, ["--reference", bad, "--current", files["same"]], "cannot read reference file", "CSV")


def test_empty_files(capsys, files, tmp_path):
    expect_error(capsys, ["--reference", files["ref"], "--current", write(tmp_path / "empty.csv", "")],
                 "current file", "empty")
    expect_error(capsys, ["--reference", write(tmp_path / "header.csv", "age,amount\n"), "--current", files["same"]],
                 "reference file", "no rows")


def test_no_common_columns(capsys, files, tmp_path):
    other = write(tmp_path / "other.csv", "x,y\n1,2\n3,4\n")
    expect_error(capsys, ["--reference", files["ref"], "--current", other], "no column in common")


def test_column_on_one_side_only(capsys, files, tmp_path):
    cur = frame(600, 2).drop(columns=["amount"]).assign(extra=1.0)
    path = tmp_path / "cur.csv"
    cur.to_csv(path, index=False)
    err = expect_error(capsys, ["--reference", files["ref"], "--current", path],
                       "only in the reference file: amount", "only in the current file: extra", "--ignore amount,extra")
    assert "one side only" in err
    code, out, _ = run(capsys, "--reference", files["ref"], "--current", path, "--ignore", "amount,extra")
    assert code == 0 and "Dataset drift" in out


def test_text_in_numerical_column(capsys, files, tmp_path):
    cur = frame(600, 2).astype({"age": object})
    cur.loc[7, "age"] = "forty"
    path = tmp_path / "cur.csv"
    cur.to_csv(path, index=False)
    expect_error(capsys, ["--reference", files["ref"], "--current", path],
                 "column 'age' is numerical in the reference file but contains text in the current file",
                 "row 8: 'forty'", "--categorical age")
    code, _, _ = run(capsys, "--reference", files["ref"], "--current", path, "--categorical", "age")
    assert code == 0


def test_unknown_names_in_flags(capsys, files):
    expect_error(capsys, ["--reference", files["ref"], "--current", files["same"], "--categorical", "nope"],
                 "--categorical names unknown column(s) 'nope'")
    expect_error(capsys, ["--reference", files["ref"], "--current", files["same"], "--ignore", "age,zzz"],
                 "--ignore names unknown column(s) 'zzz'")
    expect_error(capsys, ["--reference", files["ref"], "--current", files["same"], "--categorical", "age",
                          "--ignore", "age"], "both --categorical and --ignore")


def test_everything_ignored(capsys, files):
    expect_error(capsys, ["--reference", files["ref"], "--current", files["same"], "--ignore",
                          "age,amount,clicks,device,flag"], "nothing left to compare")


def test_html_needs_output_and_a_writable_place(capsys, files, tmp_path):
    expect_error(capsys, ["--reference", files["ref"], "--current", files["same"], "--format", "html"],
                 "--format html needs --output")
    expect_error(capsys, ["--reference", files["ref"], "--current", files["same"], "--format", "html",
                          "--output", tmp_path / "missing" / "r.html"], "does not exist")
    expect_error(capsys, ["--reference", files["ref"], "--current", files["same"], "--format", "html",
                          "--output", tmp_path], "is a directory")


def test_unwritable_output(capsys, files, tmp_path, monkeypatch):
    """A folder without write permission (simulated: CI runs as root, which may write anywhere)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(check_cli.os, "access",
                        lambda path, mode, **kw: False if str(path) == str(locked) else real_access(path, mode, **kw))
    expect_error(capsys, ["--reference", files["ref"], "--current", files["same"], "--output", locked / "r.json"],
                 "not writable")


def test_write_failure_is_exit_2(capsys, files, tmp_path, monkeypatch):
    def boom(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(check_cli.tempfile, "mkstemp", boom)
    expect_error(capsys, ["--reference", files["ref"], "--current", files["same"], "--output", tmp_path / "r.json"],
                 "cannot write --output", "Permission denied")


def test_datetime_column_must_be_ignored(capsys, files, tmp_path):
    ref = frame(300, 1).assign(ts=pd.date_range("2026-01-01", periods=300, freq="h"))
    cur = frame(300, 2).assign(ts=pd.date_range("2026-02-01", periods=300, freq="h"))
    ref.to_parquet(tmp_path / "r.parquet")
    cur.to_parquet(tmp_path / "c.parquet")
    expect_error(capsys, ["--reference", tmp_path / "r.parquet", "--current", tmp_path / "c.parquet"],
                 "column 'ts' holds dates/times", "--ignore ts")


def test_bad_config_is_exit_2(capsys, files, monkeypatch):
    monkeypatch.setenv("RTML_DRIFT_FALSE_ALARM_RATE", "lots")
    expect_error(capsys, ["--reference", files["ref"], "--current", files["same"]],
                 "configuration error", "drift.false_alarm_rate")


def test_usage_error_is_exit_2(capsys, files):
    code, _, err = run(capsys, "--reference", files["ref"])
    assert code == 2 and "--current" in err
    code, _, err = run(capsys, "--reference", files["ref"], "--current", files["same"], "--format", "xml")
    assert code == 2 and "invalid choice" in err


def test_through_drift_detector_script(files, tmp_path):
    """The real entry point, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTML_")}
    env.update(RTML_HOME=str(tmp_path / "home"), RTML_CONFIG=str(PROJECT / "config.toml"))
    cmd = [sys.executable, str(PROJECT / "drift_detector.py"), "check", "--reference", str(files["ref"]),
           "--current", str(files["drift"]), "--format", "json", "--fail-on-drift"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["dataset_drift"] is True
    proc = subprocess.run(cmd[:4] + [str(tmp_path / "none.csv")] + cmd[5:], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
