"""The model registry: model files under ``models/`` plus their rows in the ``models`` table.

* **Saving** (:func:`save_model_file`): joblib to a temporary name in the same folder, fsync,
  ``os.replace``, fsync the folder — only then is the registry row committed, so a row never
  points at a half-written file.
* **Loading** (:func:`verify_model_file`, :func:`load_champion`): the file's bytes are hashed
  and compared with the row's sha256 *before* they are unpickled; the library versions stored
  in the row must match the running ones (scikit-learn major.minor, numpy and joblib major),
  the feature list must be :data:`rtml.simulation.FEATURES` and the pipeline must take the
  :func:`rtml.modeling.design_matrix` of those columns. A failing file is refused:
  a critical alert (source ``model``) and a ``refused`` model event are stored, and the caller
  keeps serving its last good model.
* **Champion changes** — the first model, promotions (:func:`record_challenger`) and
  :func:`rollback` — are one transaction each: the old champion is archived, the new one
  marked champion and a model event records who, when and why.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.pipeline import Pipeline

from rtml import modeling
from rtml.config import Settings
from rtml.simulation import FEATURES
from rtml.storage import models as store
from rtml.storage import transaction
from rtml.storage.heartbeats import sim_now
from rtml.storage.interactions import baseline_done, read_window, time_range
from rtml.storage.monitoring import insert_alert
from rtml.storage.db import Connection
from rtml.table import Table

log = logging.getLogger(__name__)

FILE_PREFIX = "model-"
FILE_SUFFIX = ".joblib"
REFERENCE_READ_FACTOR = 4  # read at most this x max_train_rows rows of a window before sampling


class RegistryError(RuntimeError):
    """A registry operation cannot be done; the message says why and what to do."""


class ModelVerificationError(RegistryError):
    """A model file is missing, corrupt or does not match its registry row."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified model and the registry row it was checked against."""

    row: store.ModelRow
    model: Pipeline

    @property
    def version(self) -> str:
        return self.row.version


# -- files ----------------------------------------------------------------------------------------
#: What a model file's pipeline reads, stored in its row with the library versions. Rows of an
#: earlier rtml lack it: their pipelines read pandas DataFrames (see :func:`is_legacy`).
MODEL_INPUT = "design_matrix"


def library_versions() -> dict[str, str]:
    """Versions of the libraries a model file depends on (and its input format), as stored in each registry row."""
    return {"sklearn": sklearn.__version__, "numpy": np.__version__, "joblib": joblib.__version__,
            "python": platform.python_version(), "model_input": MODEL_INPUT}


def is_legacy(row: store.ModelRow) -> bool:
    """Whether ``row``'s model was saved by an earlier rtml for pandas DataFrame input.

    Such a file is genuine but unusable here; :func:`ensure_initial_model` replaces such a
    champion with a model retrained on the same training window.
    """
    return row.library_versions.get("model_input") != MODEL_INPUT


def model_filename(version: str) -> str:
    """``"v1.10"`` → ``"model-v1.10.joblib"`` (the version is validated)."""
    modeling.parse_version(version)
    return f"{FILE_PREFIX}{version}{FILE_SUFFIX}"


def save_model_file(models_dir: Path, version: str, model: Pipeline) -> tuple[Path, str]:
    """Write ``model`` durably as ``models_dir/model-<version>.joblib``; return ``(path, sha256)``.

    The bytes go to a temporary file in the same folder, are fsynced, ``os.replace``d onto the
    final name, and the folder is fsynced, so a crash leaves either no file or the whole file.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    data = buffer.getvalue()
    final = models_dir / model_filename(version)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=models_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, final)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(models_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final, hashlib.sha256(data).hexdigest()


def check_library_versions(stored: dict[str, str]) -> list[str]:
    """Reasons why a model saved with ``stored`` library versions must not be loaded here (empty = fine)."""
    running = library_versions()
    problems = []
    rules = {"sklearn": 2, "numpy": 1, "joblib": 1}  # how many leading version parts must match
    for name, parts in rules.items():
        want = str(stored.get(name, "?")).split(".")[:parts]
        have = running[name].split(".")[:parts]
        if want != have:
            problems.append(f"{name} {stored.get(name, '?')} saved, {running[name]} running")
    return problems


def verify_model_file(models_dir: Path, row: store.ModelRow) -> Pipeline:
    """Load the file of ``row`` after checking it against the row.

    Checks, in order: the file exists; its sha256 equals the row's (checked on the bytes before
    unpickling them); the library versions match (:func:`check_library_versions`); the row's
    feature list is :data:`FEATURES`; the object is a fitted Pipeline with those input features.

    Raises
    ------
    ModelVerificationError
        Saying which check failed.
    """
    path = models_dir / row.file
    if Path(row.file).name != row.file:
        raise ModelVerificationError(f"Model {row.version}: registry file name {row.file!r} is not a plain name.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelVerificationError(f"Model {row.version}: cannot read {path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != row.sha256:
        raise ModelVerificationError(f"Model {row.version}: {path.name} has sha256 {digest[:12]}…, the registry "
                                     f"says {row.sha256[:12]}… (file changed or corrupt)")
    if is_legacy(row):
        raise ModelVerificationError(f"Model {row.version} was saved by an earlier rtml whose models read pandas "
                                     "DataFrames; this one feeds them arrays. The detector retrains a champion "
                                     "like it when it starts (or run: python drift_detector.py init-model)")
    problems = check_library_versions(row.library_versions)
    if problems:
        raise ModelVerificationError(f"Model {row.version}: library versions differ ({'; '.join(problems)}); "
                                     "retrain or install the versions it was saved with")
    if list(row.features) != list(FEATURES):
        raise ModelVerificationError(f"Model {row.version}: feature list {row.features} differs from "
                                     f"this rtml's {list(FEATURES)}")
    try:
        model = joblib.load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ModelVerificationError(f"Model {row.version}: {path.name} cannot be loaded: {exc}") from None
    if not isinstance(model, Pipeline) or getattr(model, "n_features_in_", None) != len(FEATURES):
        raise ModelVerificationError(f"Model {row.version}: {path.name} holds {type(model).__name__} with "
                                     f"{getattr(model, 'n_features_in_', '?')} input features, not a Pipeline on "
                                     f"the {len(FEATURES)} columns {list(FEATURES)}")
    return model


def load_verified(settings: Settings, conn: Connection, row: store.ModelRow, *, now_s: float,
                  actor: str = "detector") -> Pipeline:
    """:func:`verify_model_file`, and on failure store a critical alert and a ``refused`` event.

    Raises
    ------
    ModelVerificationError
        After recording the refusal; the caller keeps its last good model.
    """
    try:
        return verify_model_file(settings.models_dir, row)
    except ModelVerificationError as exc:
        log.error("Refusing model %s: %s", row.version, exc)
        with transaction(conn):
            store.insert_event_in_transaction(conn, at=now_s, event="refused", version=row.version, actor=actor,
                                              reason=str(exc))
            insert_alert(conn, created_at=now_s, severity="critical", source="model",
                         message=f"Model {row.version} refused: {exc}",
                         details={"version": row.version, "file": row.file}, in_transaction=True)
        raise


def load_champion(settings: Settings, conn: Connection, *, now_s: float,
                  actor: str = "detector") -> LoadedModel | None:
    """The champion, verified; if its file is refused, the newest earlier champion that verifies.

    Used when a process has no model in memory yet (start-up). Returns ``None`` when the
    registry is empty or no champion, current or earlier, passes verification.
    """
    champion = store.read_champion(conn)
    if champion is None:
        return None
    try:
        return LoadedModel(champion, load_verified(settings, conn, champion, now_s=now_s, actor=actor))
    except ModelVerificationError:
        pass
    for version in previous_champions(conn, exclude=champion.version):
        row = store.read_model(conn, version)
        if row is None:
            continue
        try:
            model = load_verified(settings, conn, row, now_s=now_s, actor=actor)
        except ModelVerificationError:
            continue
        log.warning("Serving %s, the last good champion, while the registry's champion %s is refused",
                    row.version, champion.version)
        return LoadedModel(row, model)
    return None


def previous_champions(conn: Connection, *, exclude: str | None = None, limit: int = 200) -> list[str]:
    """Versions that were champion before, newest first (from promoted/rolled_back events)."""
    seen: list[str] = []
    for event in store.recent_events(conn, limit=limit, events=("promoted", "rolled_back")):
        for version in (event.version, event.from_version):
            if version and version != exclude and version not in seen:
                seen.append(version)
    return seen


# -- registering models ---------------------------------------------------------------------------
def _new_row(settings: Settings, *, version: str, sha256: str, created_at: float, train_start: float,
             train_end: float, n_train: int, metrics: dict, status: str, reason: str,
             promoted_at: float | None) -> store.ModelRow:
    major, minor = modeling.parse_version(version)
    return store.ModelRow(version=version, major=major, minor=minor, file=model_filename(version), sha256=sha256,
                          created_at=created_at, promoted_at=promoted_at, train_start=train_start,
                          train_end=train_end, n_train=n_train, features=list(FEATURES),
                          library_versions=library_versions(), metrics=metrics, status=status, reason=reason)


def ensure_initial_model(settings: Settings, conn: Connection, *, now_s: float | None = None
                         ) -> store.ModelRow:
    """Return the champion's row, training and registering ``v1.0`` on the baseline if there is none.

    ``v1.0`` trains on the older ``1 - holdout_fraction`` of the baseline (the generator's
    ``baseline`` batches, or the ``baseline_days`` before ``simulation.start``) and is validated on
    the newest slice; its training window becomes the first drift reference.

    A champion saved by an earlier rtml for pandas DataFrame input (:func:`is_legacy`) is
    replaced: a model of this rtml is trained on the champion's own training window (its newest
    ``holdout_fraction`` held out) and promoted in its place, the old one archived.

    Raises
    ------
    RegistryError
        When the baseline is not there yet (start the generator's backfill first) or holds a
        single class; or when a legacy champion's training window is no longer stored.
    """
    existing = store.read_champion(conn)
    if existing is not None and is_legacy(existing):
        now_s = _clock(conn, settings) if now_s is None else now_s
        return _replace_legacy_champion(settings, conn, existing, now_s=now_s)
    if existing is not None:
        return existing
    start_s, end_s, _ = store.baseline_span(conn)
    if start_s is None or not baseline_done(conn):
        raise RegistryError("No complete baseline in the database yet: run the generator's backfill "
                            "(python data_generator.py --backfill-only) before training the first model.")
    frame = read_window(conn, start_s=start_s, end_s=end_s)
    if now_s is None:
        now_s = _clock(conn, settings)
    ms = settings.model
    train_rows, holdout, holdout_start = modeling.split_holdout(frame, holdout_fraction=ms.holdout_fraction)
    if len(train_rows) < ms.min_train_rows:
        log.warning("The baseline holds only %d training rows (model.min_train_rows = %d); training v1.0 "
                    "anyway, since without a first model nothing can be scored", len(train_rows), ms.min_train_rows)
    model, metrics, train_rows = _fit_and_validate(settings, train_rows, holdout,
                                                   what="the first model on the baseline")
    metrics.update(holdout_start=holdout_start, holdout_end=end_s, trained_on="baseline")
    version = modeling.next_version(store.latest_version(conn))
    path, sha = save_model_file(settings.models_dir, version, model)
    row = _new_row(settings, version=version, sha256=sha, created_at=now_s, train_start=float(start_s),
                   train_end=holdout_start, n_train=len(train_rows), metrics=metrics, status="champion",
                   reason="first model, trained on the baseline", promoted_at=now_s)
    with transaction(conn):
        if store.champion_versions_in_transaction(conn):  # another process won the race
            log.info("Another process registered the first model meanwhile; keeping it")
        else:
            store.insert_model_in_transaction(conn, row)
            store.insert_event_in_transaction(conn, at=now_s, event="trained", version=version,
                                              reason=row.reason, details={"metrics": metrics})
            store.insert_event_in_transaction(conn, at=now_s, event="promoted", version=version,
                                              reason=row.reason)
            log.info("Trained the first model %s on %d baseline rows (validation ROC AUC %s), saved to %s",
                     version, len(train_rows), _fmt(metrics.get("roc_auc")), path)
    return store.read_champion(conn)


def _fit_and_validate(settings: Settings, train_rows: Table, holdout: Table, *, what: str
                      ) -> tuple[Pipeline, dict, Table]:
    """Subsample ``train_rows`` to ``model.max_train_rows``, train, score on ``holdout``: (model, metrics, rows used).

    Raises
    ------
    RegistryError
        When the rows cannot be trained on (e.g. a single class); ``what`` names the model in the message.
    """
    ms = settings.model
    train_rows = modeling.subsample(train_rows, max_rows=ms.max_train_rows, seed=settings.simulation.seed)
    try:
        model = modeling.train(train_rows, model_settings=ms, seed=settings.simulation.seed)
    except ValueError as exc:
        raise RegistryError(f"Cannot train {what}: {exc}") from None
    return model, modeling.evaluate(model, holdout), train_rows


def _replace_legacy_champion(settings: Settings, conn: Connection, legacy: store.ModelRow, *,
                             now_s: float) -> store.ModelRow:
    """Retrain ``legacy`` (a DataFrame-input champion) on its own training window and promote the result."""
    ms = settings.model
    frame = read_window(conn, start_s=legacy.train_start, end_s=legacy.train_end)
    train_rows, holdout, holdout_start = modeling.split_holdout(frame, holdout_fraction=ms.holdout_fraction)
    if len(train_rows) < ms.min_train_rows or len(holdout) == 0:
        raise RegistryError(f"The champion {legacy.version} was saved by an earlier rtml for pandas DataFrame input "
                            f"and must be retrained, but only {len(frame)} rows of its training window are still "
                            "stored (retention). Start over with ./run_system.sh reset.")
    model, metrics, train_rows = _fit_and_validate(settings, train_rows, holdout,
                                                   what=f"{legacy.version} again on its training window")
    metrics.update(holdout_start=holdout_start, holdout_end=legacy.train_end, trained_on="legacy champion's window")
    reason = (f"{legacy.version} retrained on its own training window: it was saved by an earlier rtml for "
              "pandas DataFrame input")
    row = record_challenger(settings, conn, model=model, now_s=now_s, train_start=float(legacy.train_start),
                            train_end=holdout_start, n_train=len(train_rows), metrics=metrics, promote=True,
                            reason=reason, champion_version=legacy.version)
    log.warning("%s (%s, validation ROC AUC %s)", reason, row.version, _fmt(metrics.get("roc_auc")))
    return store.read_champion(conn) or row


def record_challenger(settings: Settings, conn: Connection, *, model: Pipeline, now_s: float,
                      train_start: float, train_end: float, n_train: int, metrics: dict, promote: bool,
                      reason: str, champion_version: str | None) -> store.ModelRow:
    """Save a trained challenger and register it as the new champion or as rejected.

    One transaction: the row, a ``trained`` event, and either ``promoted`` (the old champion
    archived) or ``rejected``. If the champion changed since training began (a rollback),
    the challenger is rejected: it was compared against another model.
    """
    version = modeling.next_version(store.latest_version(conn))
    _, sha = save_model_file(settings.models_dir, version, model)
    with transaction(conn):
        current = store.champion_versions_in_transaction(conn)
        if promote and current != ([champion_version] if champion_version else []):
            promote, reason = False, f"champion changed during training (now {', '.join(current) or 'none'})"
        row = _new_row(settings, version=version, sha256=sha, created_at=now_s, train_start=train_start,
                       train_end=train_end, n_train=n_train, metrics=metrics,
                       status="champion" if promote else "rejected", reason=reason,
                       promoted_at=now_s if promote else None)
        store.insert_model_in_transaction(conn, row)
        store.insert_event_in_transaction(conn, at=now_s, event="trained", version=version,
                                          from_version=champion_version, reason=reason, details={"metrics": metrics})
        if promote:
            for old in current:
                store.set_model_status_in_transaction(conn, old, status="archived",
                                                      reason=f"replaced by {version}: {reason}")
            store.insert_event_in_transaction(conn, at=now_s, event="promoted", version=version,
                                              from_version=champion_version, reason=reason)
        else:
            store.insert_event_in_transaction(conn, at=now_s, event="rejected", version=version,
                                              from_version=champion_version, reason=reason)
    return row


# -- rollback -------------------------------------------------------------------------------------
def rollback(settings: Settings, conn: Connection, version: str | None = None, *, actor: str = "operator",
             reason: str = "manual rollback", now_s: float | None = None) -> store.ModelRow:
    """Make ``version`` (default: the champion before the current one) the champion again.

    The target's file is verified first; the current champion is archived; a ``rolled_back``
    event records who and why. A running detector notices the change within one loop
    iteration and switches without a restart.

    Parameters
    ----------
    settings : Settings
    conn : Connection
        A writer connection.
    version : str, default=None
        Target version such as ``"v1.0"``; ``None`` means the champion that the current one
        replaced (the ``from_version`` of the event that made it champion).
    actor, reason : str
        Recorded in model_events.
    now_s : float, default=None
        Simulated time of the event (default: the shared clock).

    Returns
    -------
    ModelRow
        The new champion's row.

    Raises
    ------
    RegistryError
        Unknown version, already champion, no previous champion, or the file fails verification
        (then nothing changes).
    """
    current = store.read_champion(conn)
    if version is None:
        if current is None:
            raise RegistryError("There is no champion to roll back from.")
        version = _previous_of(conn, current.version)
        if version is None:
            raise RegistryError(f"{current.version} has no previous champion to roll back to; "
                                "name a version (see the models table).")
    elif not _is_version(version):
        raise RegistryError(f"Unknown model version {version!r}: versions look like v1.0, v1.10.")
    target = store.read_model(conn, version)
    if target is None:
        raise RegistryError(f"Unknown model version {version}.")
    if current is not None and current.version == version:
        raise RegistryError(f"{version} is already the champion.")
    try:
        verify_model_file(settings.models_dir, target)
    except ModelVerificationError as exc:
        raise RegistryError(f"Cannot roll back to {version}: {exc}") from None
    if now_s is None:
        now_s = _clock(conn, settings)
    with transaction(conn):
        olds = store.champion_versions_in_transaction(conn)
        for old in olds:
            store.set_model_status_in_transaction(conn, old, status="archived",
                                                  reason=f"rolled back to {version} by {actor}: {reason}")
        store.set_model_status_in_transaction(conn, version, status="champion",
                                              reason=f"rolled back by {actor}: {reason}", promoted_at=now_s)
        store.insert_event_in_transaction(conn, at=now_s, event="rolled_back", version=version,
                                          from_version=olds[0] if olds else None, actor=actor, reason=reason)
    log.warning("Rolled back from %s to %s (%s: %s)", current.version if current else "none", version, actor, reason)
    return store.read_model(conn, version)


def _previous_of(conn: Connection, version: str) -> str | None:
    for event in store.recent_events(conn, limit=200, events=("promoted", "rolled_back")):
        if event.version == version:
            return event.from_version
    return None


def _is_version(text: str) -> bool:
    try:
        modeling.parse_version(text)
    except ValueError:
        return False
    return True


# -- drift reference ------------------------------------------------------------------------------
def champion_reference(conn: Connection, settings: Settings, *, row: store.ModelRow | None = None
                       ) -> tuple[Table, float, float, str]:
    """The champion's training window as the drift reference: ``(frame, start_s, end_s, version)``.

    At most ``model.max_train_rows`` rows, sampled deterministically (seeded by the simulation
    seed), oldest first. ``row`` overrides which model (default: the registry's champion).

    Raises
    ------
    RegistryError
        When there is no champion.
    """
    row = row or store.read_champion(conn)
    if row is None:
        raise RegistryError("There is no champion yet; train one with ensure_initial_model().")
    ms = settings.model
    frame = store.read_reference_sample(conn, row.version, limit=ms.max_train_rows)
    if len(frame) == 0:
        frame = read_window(conn, start_s=row.train_start, end_s=row.train_end,
                            limit=REFERENCE_READ_FACTOR * ms.max_train_rows)
        frame = modeling.subsample(frame, max_rows=ms.max_train_rows, seed=settings.simulation.seed)
        if len(frame):
            # Keep it with the model: retention may delete these interactions while it still serves.
            store.write_reference_sample(conn, row.version, frame)
    if len(frame) < min(ms.min_train_rows, row.n_train or 0):
        log.warning("Only %d rows of %s's training window are still stored (retention?)", len(frame), row.version)
    return frame, float(row.train_start), float(row.train_end), row.version


def _clock(conn: Connection, settings: Settings) -> float:
    """Simulated now from the generator's heartbeat, else the newest interaction, else the start."""
    now, _ = sim_now(conn)
    if now is not None:
        return now
    _, newest = time_range(conn)
    return float(newest) if newest is not None else settings.sim_start_s


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


__all__ = ["MODEL_INPUT", "LoadedModel", "ModelVerificationError", "RegistryError", "champion_reference",
           "check_library_versions", "ensure_initial_model", "is_legacy", "library_versions", "load_champion",
           "load_verified", "model_filename", "previous_champions", "record_challenger", "rollback",
           "save_model_file", "verify_model_file"]
