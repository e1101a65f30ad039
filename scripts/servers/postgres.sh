# shellcheck shell=bash
# A private PostgreSQL for the tests: source this file, then
#
#   start_postgres   # installs Debian's postgresql if missing, starts a
#                    # cluster on a free loopback port in a temp directory,
#                    # with TLS, and exports TEST_POSTGRES_URL (which
#                    # requires TLS with sslmode=verify-full),
#                    # TEST_POSTGRES_CA and TEST_POSTGRES_BIN_DIR
#   stop_postgres    # stops it and removes the directory
#
# The cluster belongs to the `postgres` system user because PostgreSQL
# refuses to run as root, which is how the tests run here. Loopback only,
# trust authentication: it lives for one test run and holds nothing real.
# fsync is off because a process crash (what the tests cause) does not lose
# the OS page cache; the fault tests start their own cluster with fsync on.
#
# start_postgres also starts, beside it, a primary and one synchronous
# streaming standby for the failover test (start_postgres_failover, below);
# stop_postgres stops them too. Should the pair fail to start, the rest of
# the run goes on and the failover test reports its variables missing
# (skipped, or a failure in CI).
#
# TLS: openssl makes a CA and a certificate for 127.0.0.1 and localhost
# signed by it, so every test that uses TEST_POSTGRES_URL (the store's
# suites, the multi-node suite, sessiond over PostgreSQL) connects over TLS
# and verifies the server against that CA.

_pg_bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -n "$dir" && -x "$dir/postgres" ]] && echo "$dir"
}

_pg_free_port() {
  # Binding port 0 lets the kernel choose; the tiny race before postgres
  # binds it is acceptable for tests.
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000))
}

# A CA (ca.pem) and a server certificate for 127.0.0.1 and localhost
# signed by it (server.pem, server.key) in directory $1.
_pg_make_certificates() {
  local dir=$1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=sessiond test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null || return 1
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null || return 1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null || return 1
  chmod 600 "$dir/server.key" "$dir/ca.key"
  chmod 644 "$dir/ca.pem" "$dir/server.pem"
}

_pg_as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  local bin
  bin=$(_pg_bin_dir || true)
  if [[ -z "$bin" ]]; then
    echo "postgres.sh: installing Debian's postgresql" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(_pg_bin_dir) || { echo "postgres.sh: no postgres binaries after install" >&2; return 1; }
  fi

  PG_TEST_DIR=$(mktemp -d /tmp/sessiond-pg.XXXXXX)
  chmod 755 "$PG_TEST_DIR"
  mkdir -p "$PG_TEST_DIR/data" "$PG_TEST_DIR/socket" "$PG_TEST_DIR/tls"
  _pg_make_certificates "$PG_TEST_DIR/tls" || { echo "postgres.sh: openssl could not make certificates" >&2; return 1; }
  [[ $(id -u) -eq 0 ]] && chown -R postgres: "$PG_TEST_DIR"
  PG_TEST_PORT=$(_pg_free_port)

  _pg_as_postgres "$bin/initdb" -D "$PG_TEST_DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$PG_TEST_DIR/initdb.log" 2>&1 \
    || { cat "$PG_TEST_DIR/initdb.log" >&2; return 1; }
  _pg_as_postgres "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_TEST_PORT -k $PG_TEST_DIR/socket -c fsync=off -c max_connections=300 \
    -c ssl=on -c ssl_cert_file=$PG_TEST_DIR/tls/server.pem -c ssl_key_file=$PG_TEST_DIR/tls/server.key" \
    start >/dev/null || { cat "$PG_TEST_DIR/server.log" >&2; return 1; }

  local tries=0
  until "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_TEST_PORT"; do
    tries=$((tries + 1))
    if ((tries > 100)); then
      echo "postgres.sh: server did not become ready" >&2
      cat "$PG_TEST_DIR/server.log" >&2
      return 1
    fi
    sleep 0.1
  done
  "$bin/createdb" -h 127.0.0.1 -p "$PG_TEST_PORT" -U postgres sessiond_test

  export TEST_POSTGRES_CA="$PG_TEST_DIR/tls/ca.pem"
  export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_TEST_PORT/sessiond_test?sslmode=verify-full&sslrootcert=$TEST_POSTGRES_CA"
  export TEST_POSTGRES_BIN_DIR="$bin"
  export PG_TEST_DIR PG_TEST_PORT
  echo "postgres.sh: PostgreSQL ready at $TEST_POSTGRES_URL" >&2
  start_postgres_failover || echo "postgres.sh: the failover pair did not start; its test will say so" >&2
}

# Waits (bounded) until `psql -tAc "$3"` on port $2 prints "t"; $1 names
# the wait for the message.
_pg_wait_until() {
  local what=$1 port=$2 query=$3 tries=0
  until [[ $("$PG_FAILOVER_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc "$query" 2>/dev/null) == t ]]; do
    tries=$((tries + 1))
    if ((tries > 300)); then
      echo "postgres.sh: gave up waiting for $what" >&2
      return 1
    fi
    sleep 0.1
  done
}

# A primary and one streaming standby on two free loopback ports, for the
# failover test, which stops the primary and promotes the standby (so the
# pair serves one run). Exports
#
#   TEST_POSTGRES_FAILOVER_URL          postgres://…:P1,…:P2/… with
#                                       target_session_attrs=read-write, TLS
#   TEST_POSTGRES_FAILOVER_PRIMARY_DIR  the primary's data directory
#   TEST_POSTGRES_FAILOVER_STANDBY_DIR  the standby's data directory
#   TEST_POSTGRES_BIN_DIR               pg_ctl and friends (as start_postgres)
#
# Replication is synchronous: the primary names the standby in
# synchronous_standby_names (synchronous_commit = on, the default), so it
# acknowledges a commit only once the standby has flushed it, and a standby
# promoted after the primary dies has every acknowledged write. The name is
# set (ALTER SYSTEM) once the standby streams: earlier, every commit (the
# createdb) would wait for a standby that does not exist yet, and
# pg_basebackup would copy the setting, so the promoted standby, which has
# no standby of its own, would wait for one forever. fsync stays on, as in
# production. The physical replication slot keeps the WAL the standby has not
# received yet.
start_postgres_failover() {
  local bin
  bin=$(_pg_bin_dir) || { echo "postgres.sh: no postgres binaries" >&2; return 1; }
  PG_FAILOVER_BIN=$bin
  PG_FAILOVER_DIR=$(mktemp -d /tmp/sessiond-pg-failover.XXXXXX)
  export PG_FAILOVER_DIR
  chmod 755 "$PG_FAILOVER_DIR"
  local dir=$PG_FAILOVER_DIR
  mkdir -p "$dir/primary" "$dir/standby" "$dir/socket" "$dir/tls"
  _pg_make_certificates "$dir/tls" || { echo "postgres.sh: openssl could not make certificates" >&2; return 1; }
  [[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"
  chmod 700 "$dir/standby"
  local primary_port standby_port
  primary_port=$(_pg_free_port)
  standby_port=$(_pg_free_port)
  while [[ "$standby_port" == "$primary_port" ]]; do standby_port=$(_pg_free_port); done
  local common="-c listen_addresses=127.0.0.1 -k $dir/socket -c max_connections=100 -c ssl=on \
    -c ssl_cert_file=$dir/tls/server.pem -c ssl_key_file=$dir/tls/server.key"

  # initdb's pg_hba.conf lets trust connections from 127.0.0.1 replicate.
  _pg_as_postgres "$bin/initdb" -D "$dir/primary" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  _pg_as_postgres "$bin/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w -t 60 \
    -o "$common -p $primary_port -c synchronous_commit=on" \
    start >/dev/null || { cat "$dir/primary.log" >&2; return 1; }
  "$bin/createdb" -h 127.0.0.1 -p "$primary_port" -U postgres sessiond_test || return 1

  # -R writes standby.signal and primary_conninfo (with this
  # application_name, the name the primary waits for); -C -S makes the slot;
  # a fast checkpoint, or it waits for the next spread one (minutes).
  _pg_as_postgres "$bin/pg_basebackup" -D "$dir/standby" -X stream -R -C -S sessiond_standby --checkpoint=fast \
    -d "host=127.0.0.1 port=$primary_port user=postgres application_name=sessiond_standby" \
    >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; return 1; }
  _pg_as_postgres "$bin/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w -t 60 \
    -o "$common -p $standby_port" start >/dev/null || { cat "$dir/standby.log" >&2; return 1; }
  _pg_wait_until "the standby to stream" "$primary_port" \
    "SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'sessiond_standby' AND state = 'streaming'" \
    || { cat "$dir/standby.log" >&2; return 1; }
  "$bin/psql" -q -h 127.0.0.1 -p "$primary_port" -U postgres -d postgres \
    -c "ALTER SYSTEM SET synchronous_standby_names = 'sessiond_standby'" -c "SELECT pg_reload_conf()" >/dev/null || return 1
  _pg_wait_until "the standby to be synchronous" "$primary_port" \
    "SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'sessiond_standby' AND sync_state = 'sync'" \
    || { cat "$dir/standby.log" >&2; return 1; }

  export TEST_POSTGRES_FAILOVER_URL="postgres://postgres@127.0.0.1:$primary_port,127.0.0.1:$standby_port/sessiond_test?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=$dir/tls/ca.pem"
  export TEST_POSTGRES_FAILOVER_PRIMARY_DIR="$dir/primary"
  export TEST_POSTGRES_FAILOVER_STANDBY_DIR="$dir/standby"
  export TEST_POSTGRES_BIN_DIR="$bin"
  echo "postgres.sh: failover pair ready at $TEST_POSTGRES_FAILOVER_URL" >&2
}

stop_postgres_failover() {
  [[ -n "${PG_FAILOVER_DIR:-}" && -d "$PG_FAILOVER_DIR" ]] || return 0
  local bin node
  bin=$(_pg_bin_dir || true)
  if [[ -n "$bin" ]]; then
    # The test leaves the primary stopped and the standby promoted; a
    # server already stopped makes pg_ctl fail, which is fine.
    for node in standby primary; do
      [[ -f "$PG_FAILOVER_DIR/$node/postmaster.pid" ]] || continue
      _pg_as_postgres "$bin/pg_ctl" -D "$PG_FAILOVER_DIR/$node" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$PG_FAILOVER_DIR"
  unset PG_FAILOVER_DIR PG_FAILOVER_BIN TEST_POSTGRES_FAILOVER_URL \
    TEST_POSTGRES_FAILOVER_PRIMARY_DIR TEST_POSTGRES_FAILOVER_STANDBY_DIR
}

stop_postgres() {
  stop_postgres_failover
  [[ -n "${PG_TEST_DIR:-}" && -d "$PG_TEST_DIR" ]] || return 0
  local bin
  bin=$(_pg_bin_dir || true)
  if [[ -n "$bin" ]]; then
    _pg_as_postgres "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
      || _pg_as_postgres "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_TEST_DIR"
  unset PG_TEST_DIR PG_TEST_PORT TEST_POSTGRES_URL TEST_POSTGRES_CA TEST_POSTGRES_BIN_DIR
}
