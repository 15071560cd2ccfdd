#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests, listening on a unix socket only.
#
#   tests/pg/cluster.sh start DIR [PORT]  initdb (once) and start a cluster in DIR; prints its URL
#   tests/pg/cluster.sh stop DIR          stop it (nothing to do if it is not running)
#   tests/pg/cluster.sh url DIR           print the URL of the cluster in DIR
#
# The URL is postgresql:///postgres?host=DIR&port=PORT&user=postgres (trust authentication, the
# socket in DIR, no TCP). DIR holds data/ (the cluster), log and port. Run as root, the server runs
# as user postgres (initdb refuses root) and DIR is chown-ed to it. Every subcommand is idempotent:
# starting a running cluster only prints its URL. The cluster is initialised UTF8 with locale C, so
# that text sorts by bytes as SQLite's BINARY collation does. PG_BINDIR overrides the binaries'
# folder (/usr/lib/postgresql/15/bin).
set -euo pipefail

bindir="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"
default_port=5432

die() { echo "cluster.sh: $*" >&2; exit 1; }
usage() { die "usage: cluster.sh start DIR [PORT] | stop DIR | url DIR"; }

[[ $# -ge 2 ]] || usage
cmd="$1"
dir_arg="$2"
port_arg="${3:-}"

for tool in initdb pg_ctl; do
  [[ -x "$bindir/$tool" ]] || die "$bindir/$tool not found: install PostgreSQL 15 (Debian: apt-get install postgresql-15) or set PG_BINDIR"
done

# As root, run the server tools as the postgres user.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to own the cluster"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

url_of() { echo "postgresql:///postgres?host=$1&port=$2&user=postgres"; }

running() { [[ -f "$1/data/postmaster.pid" ]] && as_owner "$bindir/pg_ctl" -D "$1/data" status >/dev/null 2>&1; }

case "$cmd" in
  start)
    [[ -n "$port_arg" && ! "$port_arg" =~ ^[0-9]+$ ]] && die "PORT must be a number, not '$port_arg'"
    mkdir -p "$dir_arg"
    dir="$(cd "$dir_arg" && pwd -P)"
    [[ "$dir" =~ [[:space:]\'\"\&\?\#%] ]] && die "DIR must not contain spaces, quotes or URL characters: $dir"
    if [[ -f "$dir/port" ]]; then
      port="$(cat "$dir/port")"
      [[ -n "$port_arg" && "$port_arg" != "$port" ]] && die "the cluster in $dir uses port $port, not $port_arg"
    else
      port="${port_arg:-$default_port}"
    fi
    socket="$dir/.s.PGSQL.$port"
    (( ${#socket} <= 100 )) || die "DIR is too long for a unix socket path: $socket"
    if [[ $(id -u) -eq 0 ]]; then
      id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to own the cluster"
      chown postgres "$dir"
      [[ -e "$dir/data" ]] && chown -R postgres "$dir/data"
      runuser -u postgres -- test -w "$dir" \
        || die "user postgres cannot reach $dir: make its parent folders traversable (chmod o+x)"
    fi
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
      as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1 || die "initdb failed, see $dir/initdb.log"
    fi
    echo "$port" >"$dir/port"
    [[ $(id -u) -eq 0 ]] && chown postgres "$dir/port"
    if ! running "$dir"; then
      as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
        -o "-k $dir -c listen_addresses='' -p $port" start >/dev/null 2>&1 \
        || die "the server did not start, see $dir/log"
    fi
    url_of "$dir" "$port"
    ;;
  stop)
    [[ -d "$dir_arg" ]] || exit 0
    dir="$(cd "$dir_arg" && pwd -P)"
    if running "$dir"; then
      as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
        || die "the server in $dir did not stop, see $dir/log"
    fi
    ;;
  url)
    [[ -f "$dir_arg/port" ]] || die "no cluster in $dir_arg (start one first)"
    dir="$(cd "$dir_arg" && pwd -P)"
    url_of "$dir" "$(cat "$dir/port")"
    ;;
  *) usage ;;
esac
