#!/bin/sh
# The compose PostgreSQL's entrypoint (deploy/postgres/Dockerfile). Runs as
# the postgres user. With an empty PGDATA it initialises a cluster whose
# superuser is POSTGRES_USER (password POSTGRES_PASSWORD, required), runs
# /docker-entrypoint-initdb.d/*.sh against a server listening on its Unix
# socket only, and stops that server; then, on every start, it becomes the
# server, listening on every address of the container. Arguments are passed
# to postgres (e.g. -c shared_buffers=256MB).
set -eu

: "${POSTGRES_USER:=postgres}"
export POSTGRES_USER

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ]; then
		echo "microshop-postgres: POSTGRES_PASSWORD is not set (needed for the first start)" >&2
		exit 2
	fi
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 \
		--locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
		--no-instructions >/dev/null
	rm -f "$pwfile"
	# Clients come from the compose network: any address, with a password.
	echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
	pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -s start
	for f in /docker-entrypoint-initdb.d/*.sh; do
		[ -e "$f" ] || continue
		echo "microshop-postgres: running $f"
		PGHOST=/var/run/postgresql sh "$f"
	done
	pg_ctl -D "$PGDATA" -m fast -w -s stop
	echo "microshop-postgres: cluster initialised"
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
