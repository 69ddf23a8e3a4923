#!/bin/sh
# The sandbox's entrypoint for its supabase/postgres-like db container: Debian's PostgreSQL 15
# (bind-mounted from the host's /usr) with wal2json, run as the postgres user like the real
# image's docker-entrypoint.sh does. On an empty data directory it runs initdb with
# POSTGRES_USER (supabase_admin) as the bootstrap superuser, installs this directory's
# pg_hba.conf/pg_ident.conf and settings, and runs the init SQL once; then it starts postgres.
set -eu
PGBIN=/usr/lib/postgresql/15/bin
HERE=/supakong-db
: "${PGDATA:=/var/lib/postgresql/data}"

as_postgres() { /usr/bin/setpriv --reuid=postgres --regid=postgres --clear-groups "$@"; }

mkdir -p /var/run/postgresql "$PGDATA"
chown postgres:postgres /var/run/postgresql "$PGDATA"
chmod 2775 /var/run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  as_postgres "$PGBIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 \
    --locale=C.UTF-8 --auth-local=scram-sha-256 --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  install -o postgres -g postgres -m 600 "$HERE/pg_hba.conf" "$HERE/pg_ident.conf" "$PGDATA/"
  {
    cat "$HERE/postgresql.conf"
    # Debian's PostgreSQL 15.20+ loads only the output plugins this setting names
    # (default 'pgoutput, test_decoding'); 15.18 and the supabase images have no such setting.
    if "$PGBIN/postgres" --describe-config | grep -q '^output_plugin_libraries'; then
      echo "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'"
    fi
  } >> "$PGDATA/postgresql.conf"
  as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  for sql in "$HERE/init.sql" "$HERE/baseline.sql"; do
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$sql"
  done
  as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -w -m fast stop >/dev/null
  echo "supakong: initialised $PGDATA"
fi

exec /usr/bin/setpriv --reuid=postgres --regid=postgres --clear-groups "$PGBIN/postgres" -D "$PGDATA"
