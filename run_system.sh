#!/usr/bin/env bash
# rtml: start, supervise and stop the real-time ML monitoring system.
# Usage: ./run_system.sh help
#
# The shell half does what a person sees (checks, the virtual environment, messages,
# confirmation); everything that must look at processes runs in `python -m rtml.supervisor`
# (psutil: pid files are verified before any signal is sent; nothing is ever killed by name).
set -euo pipefail
[ "${RTML_DEBUG:-0}" = "1" ] && set -x

RTML_PROJECT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${RTML_VENV:-$RTML_PROJECT/.venv}"
PY="$VENV/bin/python"
COMPONENTS="generator detector dashboard"

usage() {
  cat <<'USAGE'
Usage: ./run_system.sh COMMAND [ARGS] [--port N]

Commands:
  start                  install what is missing, start generator, detector, dashboard and the
                         supervisor in the background, wait until they are ready
  stop                   stop everything this instance started
  restart [COMPONENT]    restart everything, or one of: generator detector dashboard
  status [--json]        state, PID, CPU, memory, uptime, restarts, heartbeat age of each process
  logs [COMPONENT] [-f] [-n N]
                         the last N (50) log lines of all components merged in time order, or of one;
                         -f keeps following
  demo                   start with the accelerated demo preset (demo.toml): drift, a critical
                         alert, retraining and a promoted v1.1 within about 10 minutes
  reset [--yes]          delete this instance's data, models, logs and run files (asks first)
  rollback [VERSION]     make VERSION (default: the previous champion) the serving model
  test [PYTEST_ARGS]     install the test dependencies into .venv and run the whole test suite
  help                   show this text

Options:
  --port N               dashboard port (default 8501; also RTML_DASHBOARD_PORT or dashboard.port)

Environment:
  RTML_HOME=DIR          where this instance keeps data/, models/, logs/ and run/ (default: here)
  RTML_CONFIG=FILE       configuration file (default: config.toml)
  RTML_DEBUG=1           trace this script

Exit codes: 0 success (also "already running" / "already stopped"), 2 usage or configuration
error, 1 any other failure. Messages go to stderr; `status --json` and the URL printed by
`start` go to stdout.
USAGE
}

die() {
  local code="$1"; shift
  printf 'run_system.sh: %s\n' "$*" >&2
  exit "$code"
}

say() {
  printf '%s\n' "$*" >&2
}

usage_error() {
  usage >&2
  die 2 "$*"
}

# The first Python >= 3.10 on PATH.
find_python() {
  local candidate
  for candidate in "${RTML_PYTHON:-}" python3.11 python3.12 python3.13 python3.10 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# Create .venv if missing and (re)install the given requirement files when one of them changed.
# The stamp keeps one "sha256 file" line per requirements file, so `start` (requirements.txt) and
# `test` (requirements.txt + requirements-dev.txt) do not undo each other's stamp.
ensure_venv() {
  local python stamp line f
  local changed=() args=()
  if [ ! -x "$PY" ]; then
    python="$(find_python)" || die 1 "Python 3.10 or newer is required; install python3 (>= 3.10) or set RTML_PYTHON"
    say "Creating virtual environment in $VENV"
    "$python" -m venv "$VENV" || die 1 "could not create $VENV (is the python3-venv package installed?)"
  fi
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || die 1 "$VENV uses $("$PY" --version 2>&1); Python 3.10 or newer is required (remove $VENV and set RTML_PYTHON)"
  stamp="$VENV/.rtml-requirements.sha256"
  for f in "$@"; do
    line="$(sha256sum "$RTML_PROJECT/$f" | cut -d' ' -f1) $f"
    grep -qxF "$line" "$stamp" 2>/dev/null || changed+=("$f")
  done
  [ "${#changed[@]}" -gt 0 ] || return 0
  say "Installing dependencies from $* into $VENV ..."
  for f in "$@"; do args+=(-r "$RTML_PROJECT/$f"); done
  "$PY" -m pip install --disable-pip-version-check -q "${args[@]}" >&2 \
    || die 1 "installing dependencies failed (see pip's message above)"
  {
    for f in "$@"; do printf '%s %s\n' "$(sha256sum "$RTML_PROJECT/$f" | cut -d' ' -f1)" "$f"; done
    # keep the lines of the other requirement files
    if [ -f "$stamp" ]; then awk -v files=" $* " 'NF == 2 && index(files, " " $2 " ") == 0' "$stamp"; fi
  } > "$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
}

require_venv() {
  [ -x "$PY" ] || die 1 "rtml is not installed yet (no $VENV); run ./run_system.sh start"
}

# The Python half: python -m rtml.supervisor SUBCOMMAND ...
rtml_py() {
  (cd "$RTML_PROJECT" && "$PY" -m rtml.supervisor "$@")
}

# Validate the configuration (exit 2 with its message when bad) and read the paths it implies
# into CFG_HOME, CFG_LOGS, CFG_RUN, CFG_DB (the SQLite file), CFG_DATABASE (file or URL), CFG_URL.
load_config() {
  local out line
  out="$(rtml_py validate)" || exit "$?"
  while IFS= read -r line; do
    case "$line" in
      home=*) CFG_HOME="${line#home=}" ;;
      logs_dir=*) CFG_LOGS="${line#logs_dir=}" ;;
      run_dir=*) CFG_RUN="${line#run_dir=}" ;;
      db_path=*) CFG_DB="${line#db_path=}" ;;
      database=*) CFG_DATABASE="${line#database=}" ;;
      url=*) CFG_URL="${line#url=}" ;;
    esac
  done <<< "$out"
}

# Serialize start/stop/reset of one instance (fd 9; children never inherit it).
lock_instance() {
  mkdir -p "$CFG_RUN" 2>/dev/null || die 1 "cannot create $CFG_RUN; choose another RTML_HOME or fix the permissions"
  [ -w "$CFG_RUN" ] || die 1 "$CFG_RUN is not writable; choose another RTML_HOME or fix the permissions"
  exec 9> "$CFG_RUN/control.lock"
  flock -w 60 9 || die 1 "another start/stop of this instance is still running (lock $CFG_RUN/control.lock)"
}

# Run one initialization step in the foreground; its output goes to logs/COMPONENT.out.
init_step() {
  local what="$1" component="$2"; shift 2
  local out="$CFG_LOGS/$component.out"
  say "$what ..."
  if ! (cd "$RTML_PROJECT" && "$PY" "$@" >> "$out" 2>&1 9>&-); then
    tail -n 20 "$out" >&2 || true
    die 1 "$what failed; see $out and $CFG_LOGS/$component.log"
  fi
}

cmd_start() {
  [ "$#" -eq 0 ] || usage_error "start takes no arguments (got: $*)"
  ensure_venv requirements.txt
  load_config
  lock_instance
  local state needs_baseline=1 needs_model=1 line checks
  state="$(rtml_py state)"
  case "$state" in
    running)
      CFG_URL="$(rtml_py url)"
      say "rtml is already running in $CFG_HOME (see ./run_system.sh status). Dashboard: $CFG_URL"
      printf '%s\n' "$CFG_URL"
      return 0 ;;
    orphans)
      say "The supervisor is not running but components are; starting a new supervisor that adopts them." ;;
  esac
  checks="$(rtml_py preflight)" || exit "$?"
  while IFS= read -r line; do
    case "$line" in
      needs_baseline=*) needs_baseline="${line#needs_baseline=}" ;;
      needs_model=*) needs_model="${line#needs_model=}" ;;
    esac
  done <<< "$checks"
  if [ "$needs_baseline" = "1" ]; then
    init_step "Backfilling the baseline history" generator "$RTML_PROJECT/data_generator.py" --backfill-only
  fi
  if [ "$needs_model" = "1" ] && [ -f "$RTML_PROJECT/drift_detector.py" ]; then
    init_step "Training the first model (v1.0)" detector "$RTML_PROJECT/drift_detector.py" init-model
  fi
  say "Starting the supervisor and the components ..."
  # Detached: its own session, no terminal, not holding our lock; it writes run/supervisor.pid.
  (cd "$RTML_PROJECT" && exec setsid "$PY" -m rtml.supervisor run) < /dev/null >> "$CFG_LOGS/supervisor.out" 2>&1 9>&- &
  if ! rtml_py wait-ready --timeout "${RTML_START_TIMEOUT:-180}"; then
    say "Not everything came up. Inspect: ./run_system.sh status; ./run_system.sh logs. Stop: ./run_system.sh stop"
    exit 1
  fi
  say ""
  say "rtml is running (home $CFG_HOME)."
  say "  Dashboard: $CFG_URL"
  say "  Logs:      $CFG_LOGS/  (./run_system.sh logs [-f])"
  say "  Status:    ./run_system.sh status"
  say "  Stop:      ./run_system.sh stop"
  printf '%s\n' "$CFG_URL"
}

cmd_stop() {
  [ "$#" -eq 0 ] || usage_error "stop takes no arguments (got: $*)"
  if [ ! -x "$PY" ]; then
    say "rtml is not running (already stopped)"
    return 0
  fi
  load_config
  lock_instance
  rtml_py stop
}

cmd_restart() {
  [ "$#" -le 1 ] || usage_error "restart takes at most one component"
  if [ "$#" -eq 0 ]; then
    cmd_stop
    cmd_start
    return
  fi
  case " $COMPONENTS " in
    *" $1 "*) ;;
    *) usage_error "unknown component '$1' (choose one of: $COMPONENTS)" ;;
  esac
  require_venv
  load_config
  rtml_py restart "$1"
}

cmd_status() {
  local json=()
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --json) json=(--json) ;;
      *) usage_error "status: unknown argument '$1'" ;;
    esac
    shift
  done
  require_venv
  load_config
  rtml_py status "${json[@]}"
}

cmd_logs() {
  local args=()
  while [ "$#" -gt 0 ]; do
    case "$1" in
      -f|--follow) args+=(-f) ;;
      -n)
        [ "$#" -ge 2 ] || usage_error "logs: -n needs a number"
        case "$2" in ''|*[!0-9]*) usage_error "logs: -n needs a number, got '$2'" ;; esac
        args+=(-n "$2"); shift ;;
      generator|detector|dashboard|supervisor) args+=("$1") ;;
      *) usage_error "logs: unknown argument '$1' (components: $COMPONENTS supervisor)" ;;
    esac
    shift
  done
  require_venv
  load_config
  rtml_py logs "${args[@]}"
}

cmd_demo() {
  [ "$#" -eq 0 ] || usage_error "demo takes no arguments (got: $*)"
  export RTML_CONFIG="$RTML_PROJECT/demo.toml"
  ensure_venv requirements.txt
  load_config
  if [ "$(rtml_py state)" = "stopped" ] && [ -s "$CFG_DB" ]; then
    die 1 "the demo starts from a fresh database, but $CFG_DB already holds data. Run ./run_system.sh reset first, or choose another home: RTML_HOME=/tmp/rtml-demo ./run_system.sh demo"
  fi
  say "Demo preset: $RTML_CONFIG (time runs 60x faster; watch drift, a critical alert, retraining and v1.1)"
  cmd_start
}

cmd_reset() {
  local yes=0 answer
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --yes|-y) yes=1 ;;
      *) usage_error "reset: unknown argument '$1'" ;;
    esac
    shift
  done
  require_venv
  load_config
  lock_instance
  [ "$(rtml_py state)" = "stopped" ] || die 1 "rtml is running in $CFG_HOME; stop it first (./run_system.sh stop)"
  if [ "$yes" != "1" ]; then
    printf 'Delete data/, models/, logs/ and run/ of %s (database %s)? [y/N] ' "$CFG_HOME" "$CFG_DATABASE" >&2
    read -r answer || answer=""
    case "$answer" in
      y|Y|yes|YES) ;;
      *) say "Nothing deleted."; return 0 ;;
    esac
  fi
  exec 9>&-
  rtml_py reset
}

cmd_rollback() {
  [ "$#" -le 1 ] || usage_error "rollback takes at most one VERSION"
  ensure_venv requirements.txt
  load_config
  [ -f "$RTML_PROJECT/drift_detector.py" ] || die 1 "drift_detector.py is not installed; nothing to roll back"
  cd "$RTML_PROJECT"
  exec "$PY" "$RTML_PROJECT/drift_detector.py" rollback "$@"
}

cmd_test() {
  ensure_venv requirements.txt requirements-dev.txt
  cd "$RTML_PROJECT"
  exec "$PY" -m pytest "$@"
}

# Absolute form of a path given relative to where the user ran this script.
absolute() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
  esac
}

main() {
  local args=()
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --port)
        [ "$#" -ge 2 ] || usage_error "--port needs a number"
        export RTML_DASHBOARD_PORT="$2"; shift ;;
      --port=*) export RTML_DASHBOARD_PORT="${1#--port=}" ;;
      *) args+=("$1") ;;
    esac
    shift
  done
  set -- "${args[@]+"${args[@]}"}"
  export RTML_HOME
  RTML_HOME="$(absolute "${RTML_HOME:-$RTML_PROJECT}")"
  if [ -n "${RTML_CONFIG:-}" ]; then
    export RTML_CONFIG
    RTML_CONFIG="$(absolute "$RTML_CONFIG")"
  fi
  local command="${1:-help}"
  [ "$#" -gt 0 ] && shift
  case "$command" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart) cmd_restart "$@" ;;
    status) cmd_status "$@" ;;
    logs) cmd_logs "$@" ;;
    demo) cmd_demo "$@" ;;
    reset) cmd_reset "$@" ;;
    rollback) cmd_rollback "$@" ;;
    test) cmd_test "$@" ;;
    help|-h|--help) usage ;;
    *) usage_error "unknown command '$command'" ;;
  esac
}

main "$@"
