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

start_testssl() {
  if [[ ! -x /usr/bin/testssl ]]; then
    echo "testssl.sh: installing Debian's testssl.sh" >&2
    if ! { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >&2; } \
      || [[ ! -x /usr/bin/testssl ]]; then
      if [[ "${CI:-}" == "true" ]]; then
        echo "testssl.sh: could not install testssl.sh (CI=true: failing)" >&2
        return 1
      fi
      echo "testssl.sh: could not install testssl.sh; the TLS scan test will be skipped" >&2
      return 0
    fi
  fi
  export TEST_TESTSSL_BIN=/usr/bin/testssl
  echo "testssl.sh: Debian package $(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null || echo '(version unknown)')" >&2
}

stop_testssl() {
  unset TEST_TESTSSL_BIN
}
