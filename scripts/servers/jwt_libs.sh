# shellcheck shell=bash
# Independent JWT libraries for the access-token interop test
# (crates/sessiond/tests/interop.rs): sourced by scripts/test, never run on
# its own.
#
#   source scripts/servers/jwt_libs.sh
#   start_jwt_libs   # creates (or reuses) a Python virtualenv in
#                    # ${CARGO_TARGET_DIR:-target}/jwt-venv with the pinned
#                    # PyJWT and cryptography (which does its EdDSA), and an
#                    # npm prefix ${CARGO_TARGET_DIR:-target}/jwt-npm with the
#                    # pinned jose; exports TEST_JWT_PYTHON (the virtualenv's
#                    # python) and TEST_JWT_NODE_DIR (the directory whose
#                    # node_modules holds jose)
#   stop_jwt_libs    # nothing runs between tests; forgets the variables
#
# The versions are pinned here; the virtualenv and the npm prefix are reused
# while they hold exactly these versions, so a second run needs no network.
# Each half is exported on its own. Without CI=true a machine that cannot
# have a library gets a warning and its half of the test skips itself; with
# CI=true it fails.

# shellcheck source=scripts/servers/python_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/python_venv.sh"

PYJWT_VERSION="2.15.1"
CRYPTOGRAPHY_VERSION="50.0.2"
JOSE_VERSION="6.2.18"

# The version of jose in the npm prefix $1, or nothing.
_jwt_libs_jose_version() {
  node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version)' \
    "$1/node_modules/jose/package.json" 2>/dev/null
}

# Makes (or reuses) the npm prefix $1 holding exactly jose $JOSE_VERSION.
_jwt_libs_jose() {
  local dir=$1 what="the jose half of the JWT interop test"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    tool_missing jwt_libs.sh "node and npm are needed for jose" "$what"
    return
  fi
  [[ "$(_jwt_libs_jose_version "$dir")" == "$JOSE_VERSION" ]] && return 0
  echo "jwt_libs.sh: installing jose $JOSE_VERSION in $dir" >&2
  # Made again from nothing: no other version's lock file is patched.
  rm -rf "$dir" && mkdir -p "$dir"
  if ! npm install --prefix "$dir" --save-exact --no-audit --no-fund --loglevel=error "jose@$JOSE_VERSION" >&2 \
    || [[ "$(_jwt_libs_jose_version "$dir")" != "$JOSE_VERSION" ]]; then
    tool_missing jwt_libs.sh "npm could not install jose in $dir" "$what"
    return
  fi
}

start_jwt_libs() {
  local venv npm pins=("PyJWT[crypto]==$PYJWT_VERSION" "cryptography==$CRYPTOGRAPHY_VERSION")
  venv="$(realpath -m "${CARGO_TARGET_DIR:-target}/jwt-venv")"
  npm="$(realpath -m "${CARGO_TARGET_DIR:-target}/jwt-npm")"
  python_venv jwt_libs.sh "$venv" "the PyJWT half of the JWT interop test" "${pins[@]}" || return
  if python_venv_current "$venv" "${pins[@]}"; then
    export TEST_JWT_PYTHON="$venv/bin/python"
    echo "jwt_libs.sh: PyJWT $PYJWT_VERSION, cryptography $CRYPTOGRAPHY_VERSION" >&2
  fi
  _jwt_libs_jose "$npm" || return
  if [[ "$(_jwt_libs_jose_version "$npm")" == "$JOSE_VERSION" ]]; then
    export TEST_JWT_NODE_DIR="$npm"
    echo "jwt_libs.sh: jose $JOSE_VERSION on node $(node --version)" >&2
  fi
}

stop_jwt_libs() {
  unset TEST_JWT_PYTHON TEST_JWT_NODE_DIR
}
