# shellcheck shell=bash
# A Python virtualenv holding pinned packages, made or reused: sourced by the
# scripts beside it whose tools are Python packages (openapi_tools.sh,
# jwt_libs.sh), never run on its own.
#
#   python_venv NAME DIR WHAT REQUIREMENT... || return
#   python_venv_current DIR REQUIREMENT... || return 0   # skipped: WHAT skips itself
#   tool_missing NAME WHY WHAT || return   # the same rule for a caller's other tools
#
# A REQUIREMENT is `package==version` (or `package[extra]==version`). DIR is
# reused while its python runs and holds exactly these versions, so a second
# run needs no network; otherwise it is made again with the machine's python3
# (installing Debian's python3-venv if that is what is missing) and the
# requirements are pip-installed into it. When that fails: with CI=true,
# says so and returns 1 (the caller fails, and scripts/test with it);
# otherwise says that WHAT will be skipped and returns 0, and the caller
# exports nothing.

# Whether the virtualenv in $1 runs and holds exactly the requirements after it.
python_venv_current() {
  local venv=$1
  shift
  [[ -x "$venv/bin/python" ]] || return 1
  "$venv/bin/python" - "$@" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
for requirement in sys.argv[1:]:
    name, pin = requirement.split("==")
    if version(name.split("[")[0]) != pin:
        sys.exit(1)
EOF
}

# Says that a tool cannot be had: $1 the caller, $2 why, $3 what is skipped;
# returns 1 with CI=true.
tool_missing() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "$1: $2 (CI=true: failing)" >&2
    return 1
  fi
  echo "$1: $2; $3 will be skipped" >&2
  return 0
}

python_venv() {
  local name=$1 venv=$2 what=$3
  shift 3
  python_venv_current "$venv" "$@" && return 0
  if ! command -v python3 >/dev/null 2>&1; then
    tool_missing "$name" "python3 is needed for $*" "$what"
    return
  fi
  # --clear: a virtualenv left by another python3, or half made by an
  # interrupted run, is made again rather than patched.
  if ! python3 -m venv --clear "$venv" >&2; then
    # Debian's python3 needs its venv package for this.
    echo "$name: installing Debian's python3-venv" >&2
    if ! { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2; } \
      || ! python3 -m venv --clear "$venv" >&2; then
      tool_missing "$name" "could not create a Python virtualenv in $venv" "$what"
      return
    fi
  fi
  echo "$name: installing $* in $venv" >&2
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$venv/bin/python" -m pip install --quiet "$@" >&2 \
    || ! python_venv_current "$venv" "$@"; then
    tool_missing "$name" "pip could not install $* in $venv" "$what"
    return
  fi
}
