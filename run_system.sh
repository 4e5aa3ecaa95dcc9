#!/usr/bin/env bash
# rtml: start, supervise and stop the real-time ML monitoring system.
# Usage: ./run_system.sh help
set -euo pipefail
[ "${RTML_DEBUG:-0}" = "1" ] && set -x

RTML_PROJECT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${RTML_VENV:-$RTML_PROJECT/.venv}"
PY="$VENV/bin/python"

usage() {
  cat <<'USAGE'
Usage: ./run_system.sh COMMAND [ARGS]

Commands:
  test [PYTEST_ARGS]   install the test dependencies into .venv and run the whole test suite
  help                 show this text
USAGE
}

die() {
  local code="$1"; shift
  printf 'run_system.sh: %s\n' "$*" >&2
  exit "$code"
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

# Create .venv if missing and (re)install the given requirement files when their hash changed.
ensure_venv() {
  local python stamp want have
  if [ ! -x "$PY" ]; then
    python="$(find_python)" || die 1 "Python 3.10 or newer is required; install python3 (>= 3.10) or set RTML_PYTHON"
    printf 'Creating virtual environment in %s\n' "$VENV" >&2
    "$python" -m venv "$VENV" || die 1 "could not create $VENV (is the python3-venv package installed?)"
  fi
  stamp="$VENV/.rtml-requirements.sha256"
  want="$(cd "$RTML_PROJECT" && cat "$@" | sha256sum | cut -d' ' -f1)"
  have="$(cat "$stamp" 2>/dev/null || true)"
  if [ "$want" != "$have" ]; then
    printf 'Installing dependencies from %s into %s ...\n' "$*" "$VENV" >&2
    local args=()
    local f
    for f in "$@"; do args+=(-r "$RTML_PROJECT/$f"); done
    "$PY" -m pip install --disable-pip-version-check -q "${args[@]}" >&2 \
      || die 1 "installing dependencies failed (see pip's message above)"
    printf '%s\n' "$want" > "$stamp"
  fi
}

cmd_test() {
  ensure_venv requirements.txt requirements-dev.txt
  cd "$RTML_PROJECT"
  exec "$PY" -m pytest "$@"
}

main() {
  local command="${1:-help}"
  [ "$#" -gt 0 ] && shift
  case "$command" in
    test) cmd_test "$@" ;;
    help|-h|--help) usage ;;
    *) usage >&2; die 2 "unknown command '$command'" ;;
  esac
}

main "$@"
