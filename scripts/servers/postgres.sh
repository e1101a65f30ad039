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
}

stop_postgres() {
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
