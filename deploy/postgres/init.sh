#!/bin/sh
# Creates a role and a database per service in the compose PostgreSQL:
# entrypoint.sh runs it once, as the superuser, when its data volume is
# empty (the image holds it in /docker-entrypoint-initdb.d). MICROSHOP_DATABASES names the
# services (role <name>, database <name>_db, owned by the role, password
# <NAME>_DB_PASSWORD, else the name itself - fine for a local demo only).
# Each service then creates its own tables with its migrations.
set -eu

for name in ${MICROSHOP_DATABASES:?set MICROSHOP_DATABASES, e.g. "products inventory orders"}; do
	var=$(echo "$name" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD
	password=$(printenv "$var" || echo "$name")
	echo "microshop: role $name, database ${name}_db"
	psql -v ON_ERROR_STOP=1 -v name="$name" -v password="$password" \
		--username "${POSTGRES_USER:-postgres}" --dbname postgres <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name' || '_db', :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name' || '_db') \gexec
SQL
done
