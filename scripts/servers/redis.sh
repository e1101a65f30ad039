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

# Redis Cluster for the cluster tests: six nodes, three primaries each with
# one replica (redis-cli --cluster create --cluster-replicas 1), all on
# loopback ports in one temporary directory.
#
#   start_redis_cluster    # needs redis-server and redis-cli (start_redis
#                          # installs them); exports TEST_REDIS_CLUSTER_URL
#                          # (redis+cluster:// the three primaries, comma-
#                          # separated host:port), TEST_REDIS_CLUSTER_PORTS and
#                          # TEST_REDIS_CLUSTER_PIDS (all six nodes, space-
#                          # separated, in the same order) and
#                          # TEST_REDIS_CLUSTER_DIR, where <dir>/<port>/pid
#                          # holds each node's pid for a test that kills one,
#                          # and <dir>/<port>/start starts that node again
#   stop_redis_cluster     # stops every node and removes the directory
#
# Nodes keep nothing outside their directory (no RDB snapshots, no append-only
# file) and require full slot coverage (the default), so a cluster missing a
# primary refuses requests until its replica takes over. Failure detection is
# fast for tests (cluster-node-timeout 1 s).
start_redis_cluster() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "redis.sh: redis-server is missing: run start_redis first" >&2
    return 1
  fi
  TEST_REDIS_CLUSTER_DIR="$(mktemp -d -t sessiond-cluster.XXXXXX)"
  TEST_REDIS_CLUSTER_PORTS="" TEST_REDIS_CLUSTER_PIDS=""
  local ports=() port node
  for node in 1 2 3 4 5 6; do
    ports+=("$(_redis_cluster_free_port "${ports[@]}")")
  done
  local dir
  for port in "${ports[@]}"; do
    dir="$TEST_REDIS_CLUSTER_DIR/$port"
    mkdir -p "$dir"
    # The node's own start script, so a test that killed it can start it
    # again as it was (it rejoins from nodes.conf, as a replica).
    cat >"$dir/start" <<START
#!/usr/bin/env bash
echo \$\$ >"$dir/pid"
exec redis-server --bind 127.0.0.1 --port $port --cluster-enabled yes \\
  --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 1000 \\
  --appendonly no --save '' --dir "$dir" --daemonize no >>"$dir/redis.log" 2>&1
START
    chmod +x "$dir/start"
    "$dir/start" &
    TEST_REDIS_CLUSTER_PIDS+="${TEST_REDIS_CLUSTER_PIDS:+ }$!"
  done
  TEST_REDIS_CLUSTER_PORTS="${ports[*]}"
  # One deadline (30 s) for the nodes to answer, the create and the settling.
  local tries=0
  for port in "${ports[@]}"; do
    until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do
      tries=$((tries + 1))
      if ((tries > 300)) || ! kill -0 "$(cat "$TEST_REDIS_CLUSTER_DIR/$port/pid")" 2>/dev/null; then
        _redis_cluster_fail "node 127.0.0.1:$port did not start"
        return 1
      fi
      sleep 0.1
    done
  done
  local hosts=()
  for port in "${ports[@]}"; do hosts+=("127.0.0.1:$port"); done
  if ! redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes \
    >"$TEST_REDIS_CLUSTER_DIR/create.log" 2>&1; then
    _redis_cluster_fail "redis-cli --cluster create failed"
    return 1
  fi
  # Ready when every node sees the cluster ok with all slots assigned and all
  # six nodes, and every primary has its replica online.
  until _redis_cluster_ready "${ports[@]}"; do
    tries=$((tries + 1))
    if ((tries > 300)); then
      _redis_cluster_fail "the cluster did not come up within 30 s"
      return 1
    fi
    sleep 0.1
  done
  # Which nodes ended up primaries is redis-cli's choice: ask each node.
  local primaries=()
  for port in "${ports[@]}"; do
    [[ "$(redis-cli -p "$port" role 2>/dev/null | head -n 1 | tr -d '\r')" == master ]] && primaries+=("127.0.0.1:$port")
  done
  local joined
  joined="$(printf '%s,' "${primaries[@]}")"
  export TEST_REDIS_CLUSTER_URL="redis+cluster://${joined%,}"
  export TEST_REDIS_CLUSTER_PORTS TEST_REDIS_CLUSTER_PIDS TEST_REDIS_CLUSTER_DIR
  echo "redis.sh: cluster on $TEST_REDIS_CLUSTER_URL, nodes on $TEST_REDIS_CLUSTER_PORTS (pids $TEST_REDIS_CLUSTER_PIDS)" >&2
}

# A free loopback port for a cluster node: its cluster bus listens 10000
# higher, so that one must be free too and at most 65535, and neither may
# clash with the ports (or bus ports) of the nodes picked before ($@).
_redis_cluster_free_port() {
  local port taken tries=0
  while :; do
    port="$(_redis_free_port)"
    tries=$((tries + 1))
    ((tries > 100)) && break
    ((port <= 55535)) || continue
    for taken in "$@"; do
      ((port == taken || port == taken + 10000 || port + 10000 == taken)) && continue 2
    done
    python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.close()' \
      "$((port + 10000))" 2>/dev/null || continue
    break
  done
  echo "$port"
}

_redis_cluster_ready() {
  local port info primaries=0
  for port in "$@"; do
    info="$(redis-cli -p "$port" cluster info 2>/dev/null | tr -d '\r')"
    grep -qx 'cluster_state:ok' <<<"$info" || return 1
    grep -qx 'cluster_slots_assigned:16384' <<<"$info" || return 1
    grep -qx 'cluster_known_nodes:6' <<<"$info" || return 1
    info="$(redis-cli -p "$port" info replication 2>/dev/null | tr -d '\r')"
    if grep -qx 'role:master' <<<"$info"; then
      grep -qx 'connected_slaves:1' <<<"$info" || return 1
      grep -q '^slave0:.*state=online' <<<"$info" || return 1
      primaries=$((primaries + 1))
    fi
  done
  ((primaries == 3))
}

_redis_cluster_fail() {
  echo "redis.sh: $1; the cluster's logs:" >&2
  tail -n 20 "$TEST_REDIS_CLUSTER_DIR"/create.log "$TEST_REDIS_CLUSTER_DIR"/*/redis.log >&2 2>/dev/null || true
  stop_redis_cluster
}

stop_redis_cluster() {
  local port pid tries=0
  for port in ${TEST_REDIS_CLUSTER_PORTS:-}; do
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  # SHUTDOWN returns before the process is gone; give the nodes 5 s, then
  # signal whatever is left (a node that did not answer, say).
  # The pid files too: a node a test started again has a new pid.
  local pids="${TEST_REDIS_CLUSTER_PIDS:-}"
  if [[ -n "${TEST_REDIS_CLUSTER_DIR:-}" ]]; then
    pids+=" $(cat "$TEST_REDIS_CLUSTER_DIR"/*/pid 2>/dev/null | tr '\n' ' ')"
  fi
  for pid in $pids; do
    while kill -0 "$pid" 2>/dev/null && ((tries < 50)); do
      tries=$((tries + 1))
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "${TEST_REDIS_CLUSTER_DIR:-}" && -d "$TEST_REDIS_CLUSTER_DIR" ]]; then
    rm -rf "$TEST_REDIS_CLUSTER_DIR"
  fi
  unset TEST_REDIS_CLUSTER_DIR TEST_REDIS_CLUSTER_URL TEST_REDIS_CLUSTER_PORTS TEST_REDIS_CLUSTER_PIDS
}
