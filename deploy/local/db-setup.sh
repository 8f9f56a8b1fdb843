#!/usr/bin/env bash
# One database, one role and one schema per service. Idempotent; safe to run on every start.
# Uses DATABASE_ADMIN_URL (a superuser connection) when given, else the local server with trust auth.
set -euo pipefail
DB="${PGDATABASE_NAME:-postsale}"
ADMIN_URL="${DATABASE_ADMIN_URL:-postgresql://postgres@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/postgres}"
SERVICES=(ingest fulfillment sales payouts)

psql_admin() { psql -v ON_ERROR_STOP=1 -qAt "$@"; }

if [[ "$(psql_admin "$ADMIN_URL" -c "select 1 from pg_database where datname = '$DB'")" != "1" ]]; then
  psql_admin "$ADMIN_URL" -c "create database $DB"
fi
DB_URL="${ADMIN_URL%/*}/$DB"
for svc in "${SERVICES[@]}"; do
  psql_admin "$DB_URL" <<SQL
do \$\$ begin
  if not exists (select 1 from pg_roles where rolname = '$svc') then
    create role $svc login;
  end if;
end \$\$;
-- Each service owns its schema. CREATE on the database lets a service's tests make throwaway schemas of their own.
grant create, connect on database $DB to $svc;
create schema if not exists $svc authorization $svc;
SQL
done
# The operator role reads every service's schema (integrity report, CLI), writes none.
psql_admin "$DB_URL" <<SQL
do \$\$ begin
  if not exists (select 1 from pg_roles where rolname = 'operator') then create role operator login; end if;
end \$\$;
grant connect on database $DB to operator;
SQL
for svc in "${SERVICES[@]}"; do
  psql_admin "$DB_URL" -c "grant usage on schema $svc to operator; alter default privileges for role $svc in schema $svc grant select on tables to operator; grant select on all tables in schema $svc to operator;"
done
echo "[db] database $DB with roles and schemas: ${SERVICES[*]} (+ read-only role operator)"
