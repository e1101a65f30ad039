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

# shellcheck source=scripts/servers/apt_tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt_tool.sh"

start_nginx() {
  apt_tool nginx.sh nginx /usr/sbin/nginx "the forward-auth test" || return
  [[ -x /usr/sbin/nginx ]] || return 0
  export TEST_NGINX_BIN=/usr/sbin/nginx
  echo "nginx.sh: $(/usr/sbin/nginx -v 2>&1)" >&2
}

stop_nginx() {
  unset TEST_NGINX_BIN
}
