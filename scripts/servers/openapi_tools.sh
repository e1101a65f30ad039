# shellcheck shell=bash
# The OpenAPI checkers for the served /openapi.json: sourced by scripts/test,
# never run on its own.
#
#   source scripts/servers/openapi_tools.sh
#   start_openapi_tools   # creates (or reuses) a Python virtualenv in
#                         # ${CARGO_TARGET_DIR:-target}/openapi-venv with the
#                         # machine's python3, pip-installs the pinned
#                         # openapi-spec-validator and schemathesis into it,
#                         # exports TEST_OPENAPI_SPEC_VALIDATOR and
#                         # TEST_SCHEMATHESIS (absolute paths of the executables)
#   stop_openapi_tools    # nothing runs between tests; forgets the variables
#
# The versions are pinned here; the virtualenv is reused while it holds
# exactly these versions, so a second run needs no network. Without
# CI=true a machine that cannot have the tools gets a warning and the
# OpenAPI checks skip themselves; with CI=true it fails.

OPENAPI_SPEC_VALIDATOR_VERSION="0.9.0"
SCHEMATHESIS_VERSION="4.32.5"

_openapi_tools_missing() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "openapi_tools.sh: $1 (CI=true: failing)" >&2
    return 1
  fi
  echo "openapi_tools.sh: $1; the OpenAPI checks will be skipped" >&2
  return 0
}

# Whether the virtualenv in $1 runs and holds exactly the pinned versions.
_openapi_tools_current() {
  local venv="$1"
  [[ -x "$venv/bin/python" && -x "$venv/bin/openapi-spec-validator" && -x "$venv/bin/st" ]] || return 1
  "$venv/bin/python" - "$OPENAPI_SPEC_VALIDATOR_VERSION" "$SCHEMATHESIS_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
want = {"openapi-spec-validator": sys.argv[1], "schemathesis": sys.argv[2]}
sys.exit(0 if all(version(name) == pin for name, pin in want.items()) else 1)
EOF
}

start_openapi_tools() {
  local venv
  venv="$(realpath -m "${CARGO_TARGET_DIR:-target}/openapi-venv")"
  if ! _openapi_tools_current "$venv"; then
    if ! command -v python3 >/dev/null 2>&1; then
      _openapi_tools_missing "python3 is needed for openapi-spec-validator and schemathesis"
      return
    fi
    # --clear: a virtualenv left by another python3, or half made by an
    # interrupted run, is made again rather than patched.
    if ! python3 -m venv --clear "$venv" >&2; then
      # Debian's python3 needs its venv package for this.
      echo "openapi_tools.sh: installing Debian's python3-venv" >&2
      if ! { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2; } \
        || ! python3 -m venv --clear "$venv" >&2; then
        _openapi_tools_missing "could not create a Python virtualenv in $venv"
        return
      fi
    fi
    echo "openapi_tools.sh: installing openapi-spec-validator $OPENAPI_SPEC_VALIDATOR_VERSION and schemathesis $SCHEMATHESIS_VERSION in $venv" >&2
    if ! PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$venv/bin/python" -m pip install --quiet \
      "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" "schemathesis==$SCHEMATHESIS_VERSION" >&2 \
      || ! _openapi_tools_current "$venv"; then
      _openapi_tools_missing "pip could not install the OpenAPI tools in $venv"
      return
    fi
  fi
  export TEST_OPENAPI_SPEC_VALIDATOR="$venv/bin/openapi-spec-validator"
  export TEST_SCHEMATHESIS="$venv/bin/st"
  echo "openapi_tools.sh: openapi-spec-validator $OPENAPI_SPEC_VALIDATOR_VERSION, $("$TEST_SCHEMATHESIS" --version 2>/dev/null | head -n 1)" >&2
}

stop_openapi_tools() {
  unset TEST_OPENAPI_SPEC_VALIDATOR TEST_SCHEMATHESIS
}
