# shellcheck shell=bash
# The independent Standard Webhooks library for the webhook signature test
# (crates/sessiond/tests/webhooks.rs): sourced by scripts/test, never run on
# its own.
#
#   source scripts/servers/webhook_libs.sh
#   start_webhook_libs   # creates (or reuses) a Python virtualenv in
#                        # ${CARGO_TARGET_DIR:-target}/webhook-venv with the
#                        # pinned standardwebhooks; exports
#                        # TEST_WEBHOOK_PYTHON (the virtualenv's python)
#   stop_webhook_libs    # nothing runs between tests; forgets the variable
#
# The version is pinned here; the virtualenv is reused while it holds exactly
# this version, so a second run needs no network. Without CI=true a machine
# that cannot have the library gets a warning and the signature test skips
# itself; with CI=true it fails.

# shellcheck source=scripts/servers/python_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/python_venv.sh"

STANDARDWEBHOOKS_VERSION="1.1.0"

start_webhook_libs() {
  local venv pins=("standardwebhooks==$STANDARDWEBHOOKS_VERSION")
  venv="$(realpath -m "${CARGO_TARGET_DIR:-target}/webhook-venv")"
  python_venv webhook_libs.sh "$venv" "the Standard Webhooks signature test" "${pins[@]}" || return
  if python_venv_current "$venv" "${pins[@]}"; then
    export TEST_WEBHOOK_PYTHON="$venv/bin/python"
    echo "webhook_libs.sh: standardwebhooks $STANDARDWEBHOOKS_VERSION" >&2
  fi
}

stop_webhook_libs() {
  unset TEST_WEBHOOK_PYTHON
}
