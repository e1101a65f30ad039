# shellcheck shell=bash
# nginx for the forward-auth test: sourced by scripts/test, never run on its
# own.
#
#   source scripts/servers/nginx.sh
#   start_nginx   # installs Debian's nginx if missing, exports TEST_NGINX_BIN
#   stop_nginx    # forgets the variable
#
# Nothing is started here: the test writes its own configuration (the one in
# docs/nginx/) into a temporary directory and runs nginx on free loopback
# ports itself. Installing the package may start Debian's own nginx service
# on port 80 where an init system runs; the test does not use it.
# Without CI=true a machine that cannot have nginx gets a warning and the
# test skips itself; with CI=true it fails.

start_nginx() {
  if [[ ! -x /usr/sbin/nginx ]]; then
    echo "nginx.sh: installing Debian's nginx" >&2
    if ! { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >&2; } \
      || [[ ! -x /usr/sbin/nginx ]]; then
      if [[ "${CI:-}" == "true" ]]; then
        echo "nginx.sh: could not install nginx (CI=true: failing)" >&2
        return 1
      fi
      echo "nginx.sh: could not install nginx; the forward-auth test will be skipped" >&2
      return 0
    fi
  fi
  export TEST_NGINX_BIN=/usr/sbin/nginx
  echo "nginx.sh: $(/usr/sbin/nginx -v 2>&1)" >&2
}

stop_nginx() {
  unset TEST_NGINX_BIN
}
