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

# Redis Sentinel for the failover tests: one primary, two replicas and three
# sentinels (quorum 2), all on loopback ports in one temporary directory.
#
#   start_redis_sentinel   # needs redis-server (start_redis installs it);
#                          # exports TEST_REDIS_SENTINEL_URL (redis+sentinel://
#                          # the three sentinels /sessiond-test) and
#                          # TEST_REDIS_SENTINEL_PRIMARY_PID and _PORT, the
#                          # primary a failover test kills (SIGKILL)
#   stop_redis_sentinel    # stops every process and removes the directory
#
# Two replicas, not one: a test that waits for one replica per write
# (wait_replicas=1) needs a replica left after the primary is gone. Failure
# detection is fast for tests (down-after 1 s, failover-timeout 5 s).
start_redis_sentinel() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "redis.sh: redis-server is missing: run start_redis first" >&2
    return 1
  fi
  REDIS_SENTINEL_DIR="$(mktemp -d -t sessiond-sentinel.XXXXXX)"
  REDIS_SENTINEL_PIDS=()
  local primary replicas=() sentinels=() port node
  primary="$(_redis_free_port)"
  for node in 1 2; do replicas+=("$(_redis_free_port)"); done
  for node in 1 2 3; do sentinels+=("$(_redis_free_port)"); done
  for port in "$primary" "${replicas[@]}"; do
    mkdir -p "$REDIS_SENTINEL_DIR/$port"
    local role=()
    [[ "$port" != "$primary" ]] && role=(--replicaof 127.0.0.1 "$primary")
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes \
      --dir "$REDIS_SENTINEL_DIR/$port" --daemonize no "${role[@]}" \
      >"$REDIS_SENTINEL_DIR/$port/redis.log" 2>&1 &
    REDIS_SENTINEL_PIDS+=($!)
    [[ "$port" == "$primary" ]] && TEST_REDIS_SENTINEL_PRIMARY_PID=$!
  done
  for port in "${sentinels[@]}"; do
    mkdir -p "$REDIS_SENTINEL_DIR/$port"
    # Sentinel rewrites its configuration file, so it lives in the directory.
    cat >"$REDIS_SENTINEL_DIR/$port/sentinel.conf" <<CONF
port $port
bind 127.0.0.1
daemonize no
dir $REDIS_SENTINEL_DIR/$port
sentinel monitor sessiond-test 127.0.0.1 $primary 2
sentinel down-after-milliseconds sessiond-test 1000
sentinel failover-timeout sessiond-test 5000
sentinel parallel-syncs sessiond-test 2
CONF
    redis-server "$REDIS_SENTINEL_DIR/$port/sentinel.conf" --sentinel \
      >"$REDIS_SENTINEL_DIR/$port/sentinel.log" 2>&1 &
    REDIS_SENTINEL_PIDS+=($!)
  done
  # Ready when both replicas are in sync and every sentinel knows both
  # replicas and the two other sentinels (needed to agree on a failover).
  local tries=0
  until _redis_sentinel_ready "$primary" "${sentinels[@]}"; do
    tries=$((tries + 1))
    if ((tries > 300)); then
      echo "redis.sh: the sentinel set did not come up within 30 s; its logs:" >&2
      tail -n 20 "$REDIS_SENTINEL_DIR"/*/*.log >&2
      stop_redis_sentinel
      return 1
    fi
    sleep 0.1
  done
  local hosts
  hosts="$(printf '127.0.0.1:%s,' "${sentinels[@]}")"
  export TEST_REDIS_SENTINEL_URL="redis+sentinel://${hosts%,}/sessiond-test"
  export TEST_REDIS_SENTINEL_PRIMARY_PORT="$primary" TEST_REDIS_SENTINEL_PRIMARY_PID
  export REDIS_SENTINEL_DIR
  echo "redis.sh: sentinels on $TEST_REDIS_SENTINEL_URL, primary 127.0.0.1:$primary (pid $TEST_REDIS_SENTINEL_PRIMARY_PID), replicas on ${replicas[*]}" >&2
}

_redis_sentinel_ready() {
  local primary="$1" sentinel
  shift
  [[ "$(redis-cli -p "$primary" info replication 2>/dev/null | tr -d '\r' | grep -c '^slave[0-9]*:.*state=online')" == 2 ]] || return 1
  for sentinel in "$@"; do
    local info
    info="$(redis-cli -p "$sentinel" sentinel master sessiond-test 2>/dev/null | tr -d '\r' | paste - -)"
    grep -qx $'num-slaves\t2' <<<"$info" || return 1
    grep -qx $'num-other-sentinels\t2' <<<"$info" || return 1
  done
}

stop_redis_sentinel() {
  local pid
  for pid in "${REDIS_SENTINEL_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${REDIS_SENTINEL_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "${REDIS_SENTINEL_DIR:-}" && -d "$REDIS_SENTINEL_DIR" ]]; then
    rm -rf "$REDIS_SENTINEL_DIR"
  fi
  REDIS_SENTINEL_PIDS=()
  unset REDIS_SENTINEL_DIR TEST_REDIS_SENTINEL_URL TEST_REDIS_SENTINEL_PRIMARY_PID TEST_REDIS_SENTINEL_PRIMARY_PORT
}
