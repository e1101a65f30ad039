# Redis for the tests: sourced by scripts/test, never run on its own.
#
#   source scripts/servers/redis.sh
#   start_redis    # installs Debian's redis-server if missing, starts it on a
#                  # free loopback port in a temporary directory, exports
#                  # TEST_REDIS_URL and TEST_REDIS_SERVER_BIN
#   stop_redis     # stops it and removes the directory
#
# The server keeps nothing outside its temporary directory: no RDB snapshots
# (--save ''), an append-only file so a test that restarts it sees what was
# acknowledged, and it listens on 127.0.0.1 only.

_redis_free_port() {
  # Binding port 0 lets the kernel pick a port nobody holds right now.
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000))
}

start_redis() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "redis.sh: installing Debian's redis-server" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
  fi
  REDIS_TEST_DIR="$(mktemp -d -t sessiond-redis.XXXXXX)"
  REDIS_TEST_PORT="$(_redis_free_port)"
  redis-server --port "$REDIS_TEST_PORT" --bind 127.0.0.1 --save '' \
    --appendonly yes --dir "$REDIS_TEST_DIR" --daemonize no \
    >"$REDIS_TEST_DIR/redis.log" 2>&1 &
  REDIS_TEST_PID=$!
  local tries=0
  until redis-cli -p "$REDIS_TEST_PORT" ping 2>/dev/null | grep -q PONG; do
    tries=$((tries + 1))
    if ((tries > 100)) || ! kill -0 "$REDIS_TEST_PID" 2>/dev/null; then
      echo "redis.sh: redis-server did not start; its log:" >&2
      cat "$REDIS_TEST_DIR/redis.log" >&2
      return 1
    fi
    sleep 0.1
  done
  export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_TEST_PORT"
  TEST_REDIS_SERVER_BIN="$(command -v redis-server)"
  export TEST_REDIS_SERVER_BIN
  export REDIS_TEST_PORT REDIS_TEST_PID REDIS_TEST_DIR
  echo "redis.sh: redis-server $(redis-server --version | awk '{print $3}') on $TEST_REDIS_URL (pid $REDIS_TEST_PID)" >&2
}

stop_redis() {
  if [[ -n "${REDIS_TEST_PID:-}" ]]; then
    redis-cli -p "$REDIS_TEST_PORT" shutdown nosave >/dev/null 2>&1 || kill "$REDIS_TEST_PID" 2>/dev/null || true
    wait "$REDIS_TEST_PID" 2>/dev/null || true
  fi
  if [[ -n "${REDIS_TEST_DIR:-}" && -d "$REDIS_TEST_DIR" ]]; then
    rm -rf "$REDIS_TEST_DIR"
  fi
  unset REDIS_TEST_PID REDIS_TEST_DIR REDIS_TEST_PORT TEST_REDIS_URL TEST_REDIS_SERVER_BIN
}

# The floor a Redis-backed sessiond is compared against: point reads
# (GET of a 1 KiB value, about a session record's size) straight from
# redis-benchmark on the same server, printed as one line per run.
#
#   redis_floor [requests] [clients]
redis_floor() {
  local requests="${1:-200000}" clients="${2:-50}"
  if [[ -z "${REDIS_TEST_PORT:-}" ]]; then
    echo "redis.sh: redis_floor needs start_redis first" >&2
    return 1
  fi
  redis-benchmark -h 127.0.0.1 -p "$REDIS_TEST_PORT" -t get -d 1024 \
    -n "$requests" -c "$clients" -q 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | tail -1
}
