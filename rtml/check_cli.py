"""``python drift_detector.py check``: compare two data files (CSV or Parquet) for drift.

    python drift_detector.py check --reference REF --current CUR [--format table|json|html]
        [--output FILE] [--categorical a,b] [--ignore c] [--policy seed|calibrated] [--fail-on-drift]

Columns are compared by name. Feature kinds are inferred predictably from the column dtypes:

* numeric dtypes (integers, floats, nullable integers) are **numerical**;
* ``bool``, text (``object``/``string``) and ``category`` columns are **categorical**;
* ``--categorical a,b`` compares the named columns as categories whatever their dtype (use it for
  numeric codes such as zip codes or small integer flags);
* ``--ignore c`` skips columns; datetime/timedelta columns must be ignored explicitly.

A column present in one file only is an error (exit 2) unless ``--ignore`` lists it. The
policy and its thresholds come from the ``[drift]`` section of the configuration (``config.toml``,
``RTML_DRIFT_*``); ``--policy`` picks the policy.

Exit codes: 0 the check ran (whatever it found); 1 only with ``--fail-on-drift`` when dataset
drift was found; 2 bad input or configuration (the message on stderr names the problem and what to
do). The report goes to stdout or ``--output`` (written atomically).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rtml.config import ConfigError, load_settings
from rtml.drift import CATEGORICAL, NUMERICAL, DatasetResult, ReferenceProfile, check

log = logging.getLogger(__name__)

PROG = "drift_detector.py check"
FORMATS = ("table", "json", "html")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
#: A categorical column with more distinct reference values than this gets a warning.
HIGH_CARDINALITY = 100


class InputError(Exception):
    """Bad input: the message names the problem and what to do (exit code 2)."""


@dataclass
class Plan:
    """Which columns to compare, as what, and what to tell the user."""

    numerical: list[str]
    categorical: list[str]
    ignored: list[str]
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``check`` subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Compare a current data file with a reference file, feature by feature, and decide "
                    "whether the dataset drifted. Exit 0: the check ran; 1: drift found with "
                    "--fail-on-drift; 2: bad input.",
    )
    parser.add_argument("--reference", required=True, metavar="REF", help="reference data (.csv or .parquet)")
    parser.add_argument("--current", required=True, metavar="CUR", help="current data (.csv or .parquet)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="report format (default: table)")
    parser.add_argument("--output", metavar="FILE", help="write the report here (required for html)")
    parser.add_argument("--categorical", default="", metavar="A,B",
                        help="compare these columns as categories whatever their dtype")
    parser.add_argument("--ignore", default="", metavar="C,D", help="skip these columns")
    parser.add_argument("--policy", choices=("seed", "calibrated"),
                        help="decision policy (default: drift.policy from the configuration)")
    parser.add_argument("--fail-on-drift", action="store_true", help="exit 1 when dataset drift is found")
    return parser


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


# ------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------


def file_format(path: Path) -> str:
    """``"csv"`` or ``"parquet"`` from the file name, else :class:`InputError`."""
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise InputError(f"cannot tell the format of '{path}' from its name: use a file ending in .csv "
                     "(optionally .gz/.bz2/.zip/.xz) or .parquet")


def read_table(path_text: str, side: str) -> pd.DataFrame:
    """Read one input file; every failure becomes an :class:`InputError` naming ``side``.

    Parameters
    ----------
    path_text : str
        The file name given on the command line.
    side : {"reference", "current"}
        Used in messages.
    """
    path = Path(path_text)
    if not path.exists():
        raise InputError(f"{side} file '{path}' does not exist: check the path given to --{side}")
    if path.is_dir():
        raise InputError(f"{side} file '{path}' is a directory: give a .csv or .parquet file to --{side}")
    kind = file_format(path)
    if path.stat().st_size == 0:
        raise InputError(f"{side} file '{path}' is empty (0 bytes): give a file with a header and rows")
    try:
        frame = pd.read_csv(path, low_memory=False) if kind == "csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"{side} file '{path}' is empty (no header): give a file with a header and rows") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read {side} file '{path}' as {kind.upper()}: {first}. "
                         f"Check that it is a valid {kind.upper()} file (the format is taken from the "
                         "file name)") from None
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise InputError(f"cannot read {side} file '{path}' as {kind.upper()}: {type(exc).__name__}: {exc}") from None
    if frame.shape[1] == 0:
        raise InputError(f"{side} file '{path}' has no columns")
    if len(frame) == 0:
        raise InputError(f"{side} file '{path}' has a header but no rows: give a file with data rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


# ------------------------------------------------------------------------------------------
# Column plan
# ------------------------------------------------------------------------------------------


def _is_numeric(series: pd.Series) -> bool:
    dtype = series.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _is_temporal(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series.dtype) or pd.api.types.is_timedelta64_dtype(series.dtype)


def _first_text_value(series: pd.Series) -> tuple[int, str] | None:
    """Row number (1-based, data rows) and value of the first entry that is not a number."""
    values = series.dropna()
    parsed = pd.to_numeric(values, errors="coerce")
    bad = values[parsed.isna()]
    if bad.empty:
        return None
    position = series.index.get_loc(bad.index[0])
    return int(position) + 1, str(bad.iloc[0])


def _kind_of(name: str, ref: pd.Series, cur: pd.Series) -> str:
    """Infer a column's kind from both sides; raise :class:`InputError` when they disagree."""
    for side, series in (("reference", ref), ("current", cur)):
        if _is_temporal(series):
            raise InputError(f"column '{name}' holds dates/times in the {side} file; drift checks compare "
                             f"numbers and categories: pass --ignore {name} (or convert it to a number first)")
    numeric = {"reference": _is_numeric(ref), "current": _is_numeric(cur)}
    empty = {"reference": ref.isna().all(), "current": cur.isna().all()}
    if numeric["reference"] == numeric["current"]:
        return NUMERICAL if numeric["reference"] else CATEGORICAL
    text_side = "current" if numeric["reference"] else "reference"
    num_side = "reference" if text_side == "current" else "current"
    if empty[num_side]:  # an all-empty column reads as float: take the kind of the other side
        return CATEGORICAL
    if empty[text_side]:
        return NUMERICAL
    where = _first_text_value(cur if text_side == "current" else ref)
    example = f" (row {where[0]}: {where[1]!r})" if where else ""
    raise InputError(f"column '{name}' is numerical in the {num_side} file but contains text in the "
                     f"{text_side} file{example}: fix the data, or pass --categorical {name} to compare it "
                     f"as categories, or --ignore {name}")


def plan_columns(reference: pd.DataFrame, current: pd.DataFrame, *, categorical: Sequence[str],
                 ignore: Sequence[str]) -> Plan:
    """Decide which columns are compared and how.

    Raises
    ------
    InputError
        Unknown names in ``categorical``/``ignore``, a name in both, a column present on one side
        only (and not ignored), no common column left, a temporal column, or a column numerical
        on one side and text on the other.
    """
    ref_cols, cur_cols = list(reference.columns), list(current.columns)
    known = set(ref_cols) | set(cur_cols)
    for flag, names in (("--categorical", categorical), ("--ignore", ignore)):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InputError(f"{flag} names unknown column(s) {', '.join(map(repr, unknown))}; the files have: "
                             f"{', '.join(sorted(known))}")
    both = sorted(set(categorical) & set(ignore))
    if both:
        raise InputError(f"column(s) {', '.join(map(repr, both))} given to both --categorical and --ignore: choose one")
    ignored = set(ignore)
    only_ref = [c for c in ref_cols if c not in cur_cols and c not in ignored]
    only_cur = [c for c in cur_cols if c not in ref_cols and c not in ignored]
    common = [c for c in ref_cols if c in cur_cols]
    if not common:
        raise InputError("the reference and current files have no column in common: reference has "
                         f"{', '.join(ref_cols)}; current has {', '.join(cur_cols)}")
    if only_ref or only_cur:
        parts = []
        if only_ref:
            parts.append(f"only in the reference file: {', '.join(only_ref)}")
        if only_cur:
            parts.append(f"only in the current file: {', '.join(only_cur)}")
        raise InputError(f"column(s) present on one side only ({'; '.join(parts)}): pass "
                         f"--ignore {','.join(only_ref + only_cur)} to check the {len(common)} common column(s)")
    compared = [c for c in common if c not in ignored]
    if not compared:
        raise InputError("every common column is ignored: nothing left to compare")
    plan = Plan(numerical=[], categorical=[], ignored=[c for c in ref_cols + cur_cols if c in ignored])
    plan.ignored = list(dict.fromkeys(plan.ignored))
    forced = set(categorical)
    for name in compared:
        kind = CATEGORICAL if name in forced else _kind_of(name, reference[name], current[name])
        (plan.numerical if kind == NUMERICAL else plan.categorical).append(name)
    for name in plan.categorical:
        n_distinct = int(reference[name].nunique(dropna=True))
        if n_distinct > HIGH_CARDINALITY:
            plan.warnings.append(f"column '{name}' is compared as categorical but has {n_distinct} distinct values "
                                 "in the reference; if it is an identifier, pass --ignore "
                                 f"{name}; if it is a number stored as text, clean it")
    return plan


# ------------------------------------------------------------------------------------------
# Policy, check, output
# ------------------------------------------------------------------------------------------


def load_policy(policy_name: str | None):
    """The configured policy (``drift`` section), optionally another one by name; and the bins."""
    from rtml.monitor import make_policy

    overrides = {"drift.policy": policy_name} if policy_name else {}
    settings = load_settings(environ=os.environ, overrides=overrides)
    return make_policy(settings.drift), settings.drift.bins


def run_check(reference: pd.DataFrame, current: pd.DataFrame, plan: Plan, policy, bins: int) -> DatasetResult:
    """Fit the reference profile and check the current frame under ``policy``."""
    try:
        profile = ReferenceProfile.fit(reference, numerical=plan.numerical, categorical=plan.categorical, bins=bins)
        return check(reference=profile, current=current, policy=policy)
    except ValueError as exc:  # e.g. a numerical column that cannot be read as numbers
        raise InputError(f"{exc}: fix the data, or use --categorical / --ignore for that column") from None


def check_output_path(output: str | None, fmt: str) -> Path | None:
    """Validate ``--output`` before the (possibly long) check runs."""
    if output is None:
        if fmt == "html":
            raise InputError("--format html needs --output FILE (an HTML report is not written to the terminal)")
        return None
    path = Path(output)
    if path.is_dir():
        raise InputError(f"--output '{path}' is a directory: give a file name such as {path / 'report.html'}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write --output '{path}': directory '{parent}' does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write --output '{path}': directory '{parent}' is not writable")
    return path


def _file_mode(path: Path) -> int:
    """The existing file's mode, else the usual ``0o666`` less the umask (mkstemp uses 0o600)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def render(fmt: str, result: DatasetResult, *, reference: pd.DataFrame, current: pd.DataFrame, plan: Plan,
           ref_path: str, cur_path: str) -> str:
    """The report text in ``fmt``."""
    from rtml import check_report

    meta = check_report.Meta(reference_path=ref_path, current_path=cur_path,
                             n_reference_rows=len(reference), n_current_rows=len(current),
                             ignored=tuple(plan.ignored), warnings=tuple(plan.warnings))
    if fmt == "json":
        return check_report.to_json(result, meta)
    if fmt == "html":
        return check_report.to_html(result, meta, reference=reference, current=current)
    return check_report.to_table(result, meta)


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``check`` subcommand; return the exit code (0, 1 or 2)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # usage errors exit 2, --help exits 0
        return int(exc.code or 0)
    try:
        policy, bins = load_policy(args.policy)
    except ConfigError as exc:
        return _error(f"configuration error: {exc}")
    try:
        output = check_output_path(args.output, args.format)
        reference = read_table(args.reference, "reference")
        current = read_table(args.current, "current")
        plan = plan_columns(reference, current, categorical=_names(args.categorical), ignore=_names(args.ignore))
        for message in plan.warnings:
            print(f"{PROG}: warning: {message}", file=sys.stderr)
        result = run_check(reference, current, plan, policy, bins)
        text = render(args.format, result, reference=reference, current=current, plan=plan,
                      ref_path=args.reference, cur_path=args.current)
    except InputError as exc:
        return _error(str(exc))
    if result.status != "ok":
        unusable = [f.feature for f in result.features if not f.usable]
        print(f"{PROG}: warning: status {result.status}: not enough data (fewer than {policy.min_rows} usable "
              f"values) for {', '.join(unusable)}; those features have no verdict", file=sys.stderr)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        try:
            write_atomic(output, text)
        except OSError as exc:
            return _error(f"cannot write --output '{output}': {exc.strerror or exc}")
        print(f"{PROG}: report written to {output}", file=sys.stderr)
    if args.fail_on_drift and result.dataset_drift:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
