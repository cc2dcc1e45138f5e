#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the sweep tests and local multi-worker sweeps.
#
#   scripts/pg_test_server.sh start [DIR]   -> prints postgresql://postgres@127.0.0.1:<port>/musefusion_test
#   scripts/pg_test_server.sh stop DIR      -> stops the cluster and deletes DIR
#
# Installs the Debian package 'postgresql' when no initdb is found (needs apt and the network). The cluster lives
# in DIR (default: a new /tmp/musefusion-pg.XXXXXX, reported on stderr), is owned by an unprivileged user (initdb
# refuses root: the 'postgres' user, else a created 'musefusion-pg' user), trusts local connections and listens
# only on 127.0.0.1 at a free port. Exit 3: PostgreSQL cannot be installed or started (tests skip on that).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # runuser, useradd: a minimal PATH (cron, env -i) lacks sbin

die() { echo "pg_test_server: $*" >&2; exit 3; }

find_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
    return 1
}

install_pg() {
    command -v apt-get >/dev/null 2>&1 || die "no initdb and no apt-get: install PostgreSQL server binaries"
    [ "$(id -u)" = 0 ] || die "no initdb and not root: install the 'postgresql' package"
    echo "pg_test_server: installing postgresql with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null) >&2 || die "apt-get install postgresql failed"
}

as_user() {  # run a command as the cluster owner
    if [ "$(id -u)" = 0 ]; then runuser -u "$PGUSER_OS" -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 20000))
}

cmd=${1:-}
case "$cmd" in
start)
    BIN=$(find_bin) || { install_pg; BIN=$(find_bin) || die "initdb still not found after installing postgresql"; }
    DIR=${2:-$(mktemp -d /tmp/musefusion-pg.XXXXXX)}
    mkdir -p "$DIR"
    PGUSER_OS=$(id -un)
    if [ "$(id -u)" = 0 ]; then
        if id postgres >/dev/null 2>&1; then PGUSER_OS=postgres
        else
            id musefusion-pg >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin musefusion-pg \
                || die "cannot create an unprivileged user for initdb"
            PGUSER_OS=musefusion-pg
        fi
        chown -R "$PGUSER_OS" "$DIR"
        chmod 700 "$DIR"
    fi
    PORT=$(free_port)
    as_user "$BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
        || die "initdb failed; see $DIR/initdb.log"
    as_user "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=50" start >&2 \
        || die "the server did not start; see $DIR/server.log"
    echo "$PORT" >"$DIR/port"
    as_user "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres musefusion_test || die "createdb failed"
    echo "pg_test_server: cluster in $DIR (stop: $0 stop $DIR)" >&2
    echo "postgresql://postgres@127.0.0.1:$PORT/musefusion_test"
    ;;
stop)
    DIR=${2:?usage: $0 stop DIR}
    BIN=$(find_bin) || die "initdb not found"
    PGUSER_OS=$(stat -c %U "$DIR")
    if [ -d "$DIR/data" ]; then as_user "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >&2 || true; fi
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start [DIR] | stop DIR" >&2
    exit 64
    ;;
esac
