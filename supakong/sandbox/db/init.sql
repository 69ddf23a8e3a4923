-- The sandbox db's one-time setup: the roles, schemas and publication of a Supabase database
-- that Realtime relies on, written for supakong's sandbox (not Supabase's own init scripts).
-- Runs once, right after initdb, as supabase_admin (the bootstrap superuser, POSTGRES_USER).

-- Supabase demotes `postgres` to a non-superuser that can still replicate and bypass RLS.
create role postgres login createrole createdb replication bypassrls;
-- The API roles PostgREST and Realtime switch to with `set role` from a JWT's `role` claim.
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;

create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;

-- auth.uid()/auth.role()/auth.jwt() read the claims Realtime and PostgREST put in
-- request.jwt.claims, so RLS policies written for Supabase work here.
create schema if not exists auth;
create function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;
create function auth.uid() returns uuid language sql stable as $$
  select nullif(auth.jwt() ->> 'sub', '')::uuid
$$;
create function auth.role() returns text language sql stable as $$
  select nullif(auth.jwt() ->> 'role', '')
$$;
grant usage on schema auth to anon, authenticated, service_role;
grant execute on all functions in schema auth to anon, authenticated, service_role;

-- Tables made in public are readable and writable by the API roles unless revoked: RLS is
-- what restricts them (Supabase's default privileges).
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on tables to anon, authenticated, service_role;

-- The publication Realtime's postgres_changes reads; tables are added to it one by one.
create publication supabase_realtime;

-- Realtime keeps its own tenants in _realtime (the compose file's volumes/db/realtime.sql).
create schema if not exists _realtime;
alter schema _realtime owner to supabase_admin;
