# shellcheck shell=bash
# One Debian tool a test needs, installed if missing: sourced by the
# scripts beside it that find a tool rather than start a server (nginx.sh,
# testssl.sh), never run on its own.
#
#   apt_tool NAME PACKAGE BINARY WHAT || return
#   [[ -x BINARY ]] || return 0   # skipped: WHAT skips itself
#
# Installs PACKAGE with apt-get when BINARY is missing (as root, as on these
# machines and CI). When it is still missing: with CI=true, says so and
# returns 1 (the caller fails, and scripts/test with it); otherwise says that
# WHAT will be skipped and returns 0, and the caller exports nothing.

apt_tool() {
  local name=$1 package=$2 binary=$3 what=$4
  [[ -x "$binary" ]] && return 0
  echo "$name: installing Debian's $package" >&2
  if { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2; } \
    && [[ -x "$binary" ]]; then
    return 0
  fi
  if [[ "${CI:-}" == "true" ]]; then
    echo "$name: could not install $package (CI=true: failing)" >&2
    return 1
  fi
  echo "$name: could not install $package; $what will be skipped" >&2
  return 0
}
