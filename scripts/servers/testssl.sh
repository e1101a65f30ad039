# shellcheck shell=bash
# testssl.sh for the TLS scan test: sourced by scripts/test, never run on its
# own.
#
#   source scripts/servers/testssl.sh
#   start_testssl   # installs Debian's testssl.sh if missing, exports TEST_TESTSSL_BIN
#   stop_testssl    # forgets the variable
#
# Nothing is started here: the test runs sessiond with a certificate of its
# own and points testssl at 127.0.0.1 itself. Debian's package brings its
# cipher-suite mapping file with it and uses the system's openssl, so a scan
# downloads nothing (the test also keeps it from phoning out for CRLs or
# OCSP, which it only does when asked to).
# Without CI=true a machine that cannot have testssl.sh gets a warning and
# the test skips itself; with CI=true it fails.

# shellcheck source=scripts/servers/apt_tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt_tool.sh"

start_testssl() {
  apt_tool testssl.sh testssl.sh /usr/bin/testssl "the TLS scan test" || return
  [[ -x /usr/bin/testssl ]] || return 0
  export TEST_TESTSSL_BIN=/usr/bin/testssl
  echo "testssl.sh: Debian package $(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null || echo '(version unknown)')" >&2
}

stop_testssl() {
  unset TEST_TESTSSL_BIN
}
