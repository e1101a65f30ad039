# shellcheck shell=bash
# Chromium and playwright-core for the browser tests: sourced by scripts/test,
# never run on its own.
#
#   source scripts/servers/chromium.sh
#   start_chromium   # installs Debian's chromium if missing, runs `npm ci` in
#                    # tests/browser (playwright-core, pinned by its lock
#                    # file), exports TEST_CHROMIUM and TEST_BROWSER_DIR
#   stop_chromium    # nothing runs between tests; forgets the variables
#
# The browser is Debian's: playwright-core never downloads one (and
# `npx playwright install` would fail here: it fetches its own build).
# Without CI=true a machine that cannot have Chromium or Node.js gets a
# warning and the browser tests skip themselves; with CI=true it fails.

_chromium_missing() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "chromium.sh: $1 (CI=true: failing)" >&2
    return 1
  fi
  echo "chromium.sh: $1; the browser tests will be skipped" >&2
  return 0
}

start_chromium() {
  local dir
  dir="$(realpath "$(dirname "${BASH_SOURCE[0]}")/../../tests/browser")"
  if [[ ! -x /usr/bin/chromium ]]; then
    echo "chromium.sh: installing Debian's chromium" >&2
    if ! { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2; } \
      || [[ ! -x /usr/bin/chromium ]]; then
      _chromium_missing "could not install chromium"
      return
    fi
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    _chromium_missing "node and npm are needed to drive Chromium"
    return
  fi
  if ! (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2); then
    _chromium_missing "npm ci in $dir failed"
    return
  fi
  export TEST_CHROMIUM=/usr/bin/chromium
  export TEST_BROWSER_DIR="$dir"
  echo "chromium.sh: $(/usr/bin/chromium --version 2>/dev/null | head -n 1), playwright-core $(cd "$dir" && node -p 'require("playwright-core/package.json").version')" >&2
}

stop_chromium() {
  unset TEST_CHROMIUM TEST_BROWSER_DIR
}
