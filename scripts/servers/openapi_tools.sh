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

# shellcheck source=scripts/servers/python_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/python_venv.sh"

OPENAPI_SPEC_VALIDATOR_VERSION="0.9.0"
SCHEMATHESIS_VERSION="4.32.5"

start_openapi_tools() {
  local venv pins=("openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" "schemathesis==$SCHEMATHESIS_VERSION")
  venv="$(realpath -m "${CARGO_TARGET_DIR:-target}/openapi-venv")"
  python_venv openapi_tools.sh "$venv" "the OpenAPI checks" "${pins[@]}" || return
  python_venv_current "$venv" "${pins[@]}" || return 0
  export TEST_OPENAPI_SPEC_VALIDATOR="$venv/bin/openapi-spec-validator"
  export TEST_SCHEMATHESIS="$venv/bin/st"
  echo "openapi_tools.sh: openapi-spec-validator $OPENAPI_SPEC_VALIDATOR_VERSION, $("$TEST_SCHEMATHESIS" --version 2>/dev/null | head -n 1)" >&2
}

stop_openapi_tools() {
  unset TEST_OPENAPI_SPEC_VALIDATOR TEST_SCHEMATHESIS
}
