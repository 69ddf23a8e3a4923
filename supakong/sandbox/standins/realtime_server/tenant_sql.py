"""The SQL the Realtime stand-in runs in its database, written for the stand-in.

Realtime keeps its tenants in ``_realtime`` (its own migrations, then ``seeds.exs`` on every
boot with ``SEED_SELF_HOST=true``) and, in each tenant's database, a ``realtime`` schema it
migrates itself: ``realtime.subscription`` (one row per channel binding) and the functions
its poller calls, ``realtime.list_changes`` → ``realtime.apply_rls``. This module is an
equivalent of those objects with the same names and the same behaviour where a client or
``doctor`` can see it (supabase/realtime ``priv/repo/tenant_schema/realtime/``,
``lib/extensions/postgres_cdc_rls/``), not a copy of Realtime's SQL:

* the poll reads a temporary wal2json slot with Realtime's options (``format-version`` 2,
  primary keys, type oids, timestamps; the publication's actions and tables);
* a subscriber sees a change when its binding's filters pass and, with RLS on, when
  ``select exists(… where pk = …)`` run as its role with its claims in
  ``request.jwt.claims`` says so: the row as it is at poll time, as in Realtime;
* no primary key gives ``Error 400: Bad Request, no primary key``, no SELECT on the primary
  key ``Error 401: Unauthorized``, a record over ``max_record_bytes``
  ``Error 413: Payload Too Large``.

Filters support Realtime's ``eq, neq, lt, lte, gt, gte, in`` (not ``like``/``is``/…).
"""

from __future__ import annotations

#: Realtime's own tables (``_realtime``, search_path set by DB_AFTER_CONNECT_QUERY).
CONTROL_SCHEMA = """
create schema if not exists _realtime;
create table if not exists _realtime.tenants (
  id uuid primary key default gen_random_uuid(),
  name text,
  external_id text not null unique,
  jwt_secret text,
  max_concurrent_users integer not null default 200,
  max_events_per_second integer not null default 100,
  max_bytes_per_second integer not null default 100000,
  max_channels_per_client integer not null default 100,
  max_joins_per_second integer not null default 100,
  postgres_cdc_default text default 'postgres_cdc_rls',
  suspend boolean default false,
  private_only boolean not null default false,
  inserted_at timestamp(0) not null default now(),
  updated_at timestamp(0) not null default now()
);
create table if not exists _realtime.extensions (
  id uuid primary key default gen_random_uuid(),
  type text,
  settings jsonb,
  tenant_external_id text references _realtime.tenants (external_id) on delete cascade,
  inserted_at timestamp(0) not null default now(),
  updated_at timestamp(0) not null default now()
);
create table if not exists _realtime.schema_migrations (version bigint primary key, inserted_at timestamp(0));
insert into _realtime.schema_migrations values (20260101000000, now()) on conflict do nothing;
"""

#: Encrypted like Realtime's Crypto (AES-128-ECB, PKCS7, base64) with pgcrypto.
_ENCRYPT = (
    "encode(extensions.encrypt(convert_to({value}, 'utf8'), convert_to(%(key)s, 'utf8'), 'aes-ecb/pad:pkcs'), 'base64')"
)

#: seeds.exs: the self-host tenant, deleted and inserted again on every start.
SEED_TENANT = (
    "delete from _realtime.tenants where external_id = %(tenant)s",
    "insert into _realtime.tenants (name, external_id, jwt_secret) values (%(tenant)s, %(tenant)s, "
    + _ENCRYPT.format(value="%(jwt_secret)s")
    + ")",
    "insert into _realtime.extensions (type, tenant_external_id, settings) values ('postgres_cdc_rls', %(tenant)s,"
    " jsonb_build_object('region', 'us-east-1', 'publication', 'supabase_realtime',"
    " 'slot_name', 'supabase_realtime_replication_slot', 'poll_interval_ms', 100, 'poll_max_changes', 100,"
    " 'poll_max_record_bytes', 1048576, 'ssl_enforced', false,"
    " 'db_host', " + _ENCRYPT.format(value="%(db_host)s") + ", 'db_port', " + _ENCRYPT.format(value="%(db_port)s") + ","
    " 'db_name', " + _ENCRYPT.format(value="%(db_name)s") + ", 'db_user', " + _ENCRYPT.format(value="%(db_user)s") + ","
    " 'db_password', " + _ENCRYPT.format(value="%(db_password)s") + "))",
)

#: The tenant's postgres_cdc_rls settings (publication, slot name, poll options).
EXTENSION_SETTINGS = (
    "select settings - array['db_host', 'db_port', 'db_name', 'db_user', 'db_password'] from _realtime.extensions"
    " where tenant_external_id = %(tenant)s and type = 'postgres_cdc_rls'"
)

TENANT_SCHEMA_VERSION = 20260101000001

#: The tenant's ``realtime`` schema (Realtime migrates it when it connects to the tenant).
TENANT_SCHEMA = r"""
do $$ begin create role supabase_realtime_admin nologin noinherit;
exception when duplicate_object then null; end $$;
create schema if not exists realtime;
grant usage on schema realtime to postgres, anon, authenticated, service_role;
create table if not exists realtime.schema_migrations (version bigint primary key, inserted_at timestamp(0));

create or replace function realtime.to_regrole(role_name text) returns regrole
  language sql immutable as $fn$ select role_name::regrole $fn$;

create table if not exists realtime.subscription (
  id bigint generated always as identity primary key,
  subscription_id uuid not null,
  entity regclass not null,
  filters jsonb not null default '[]',
  claims jsonb not null,
  claims_role regrole generated always as (realtime.to_regrole(claims ->> 'role')) stored not null,
  action_filter text not null default '*' check (action_filter in ('*', 'INSERT', 'UPDATE', 'DELETE')),
  created_at timestamp not null default timezone('utc', now()),
  unique (subscription_id, entity, filters, action_filter)
);
create index if not exists subscription_entity on realtime.subscription (entity);
grant select on realtime.subscription to anon, authenticated, service_role;

-- A column's wal2json value as JSON of its own type (timestamps in ISO form, numbers as numbers).
create or replace function realtime.typed_value(val text, type_ regtype) returns jsonb
  language plpgsql stable as $fn$
declare result jsonb;
begin
  if val is null then return 'null'::jsonb; end if;
  if type_ = 'bytea'::regtype then return to_jsonb(val); end if;
  execute format('select to_jsonb(%L::%s)', val, type_) into result;
  return result;
end $fn$;

-- op is one of Realtime's filter operators; `in` takes a Postgres array literal {a,b}.
create or replace function realtime.filter_holds(op text, type_ regtype, val text, wanted text) returns boolean
  language plpgsql stable as $fn$
declare
  symbol text := case op when 'eq' then '=' when 'neq' then '<>' when 'lt' then '<' when 'lte' then '<='
                         when 'gt' then '>' when 'gte' then '>=' when 'in' then '= any' end;
  result boolean;
begin
  if symbol is null then raise exception 'unsupported filter operator %', op; end if;
  execute format('select %L::%s %s (%L::%s)', val, type_, symbol, wanted,
                 case when op = 'in' then type_::text || '[]' else type_::text end) into result;
  return coalesce(result, false);
end $fn$;

-- Every filter of a subscription holds on these columns ([{name, type_oid, text}]).
create or replace function realtime.passes_filters(columns jsonb, filters jsonb) returns boolean
  language sql stable as $fn$
  select coalesce(bool_and(c.col is not null
                           and realtime.filter_holds(f ->> 'op', (c.col ->> 'type_oid')::oid::regtype,
                                                     c.col ->> 'text', f ->> 'value')), true)
    from jsonb_array_elements(filters) f
    left join lateral (select x as col from jsonb_array_elements(columns) x
                        where x ->> 'name' = f ->> 'column' limit 1) c on true
$fn$;

-- A subscription's filters name columns its role may read, with values of their type.
create or replace function realtime.check_subscription_filters() returns trigger
  language plpgsql as $fn$
declare
  f jsonb;
  col_type regtype;
  role_ regrole := realtime.to_regrole(new.claims ->> 'role');
begin
  for f in select * from jsonb_array_elements(new.filters) loop
    select a.atttypid::regtype into col_type from pg_attribute a
     where a.attrelid = new.entity and a.attname = f ->> 'column' and a.attnum > 0 and not a.attisdropped
       and has_column_privilege(role_, a.attrelid, a.attnum, 'SELECT');
    if col_type is null then
      raise exception 'invalid column for filter %', f ->> 'column';
    end if;
    perform realtime.filter_holds(f ->> 'op', col_type, null, f ->> 'value');
  end loop;
  return new;
end $fn$;
drop trigger if exists check_filters on realtime.subscription;
create trigger check_filters before insert or update on realtime.subscription
  for each row execute function realtime.check_subscription_filters();

-- wal2json's columns/identity as [{name, type_oid, text, value, is_pk}].
create or replace function realtime.wal_columns(wal_columns jsonb, pk jsonb) returns jsonb
  language sql stable as $fn$
  select coalesce(jsonb_agg(jsonb_build_object(
           'name', c ->> 'name',
           'type_oid', coalesce((c ->> 'typeoid')::oid, (c ->> 'type')::regtype::oid),
           'text', (c -> 'value') #>> '{}',
           'value', realtime.typed_value((c -> 'value') #>> '{}',
                                         coalesce((c ->> 'typeoid')::oid, (c ->> 'type')::regtype::oid)::regtype),
           'is_pk', exists (select 1 from jsonb_array_elements(pk) p where p ->> 'name' = c ->> 'name'))), '[]')
    from jsonb_array_elements(coalesce(wal_columns, '[]')) c
$fn$;

-- One change → one row per role of the table's subscribers: what that role may receive.
create or replace function realtime.apply_rls(wal jsonb, max_record_bytes integer default 1048576)
  returns table (wal_out jsonb, is_rls_enabled boolean, subscription_ids uuid[], errors text[])
  language plpgsql as $fn$
declare
  entity_ regclass := format('%I.%I', wal ->> 'schema', wal ->> 'table')::regclass;
  action_ text := case wal ->> 'action' when 'I' then 'INSERT' when 'U' then 'UPDATE' when 'D' then 'DELETE' end;
  rls boolean := (select relrowsecurity from pg_class where oid = entity_);
  too_big boolean := octet_length(wal::text) > max_record_bytes;
  cols jsonb := realtime.wal_columns(wal -> 'columns', wal -> 'pk');
  old_cols jsonb := realtime.wal_columns(wal -> 'identity', wal -> 'pk');
  head jsonb := jsonb_build_object('schema', wal ->> 'schema', 'table', wal ->> 'table', 'type', action_);
  pk_where text;
  role_ regrole;
  sub record;
  seen boolean;
  visible uuid[];
  readable text[];
  body jsonb;
begin
  if action_ is null then return; end if;
  select string_agg(format('%I = %L::%s', c ->> 'name', c ->> 'text', (c ->> 'type_oid')::oid::regtype), ' and ')
    into pk_where from jsonb_array_elements(cols) c where (c ->> 'is_pk')::boolean;
  for role_ in
    select distinct s.claims_role from realtime.subscription s
     where s.entity = entity_ and s.action_filter in ('*', action_) order by 1
  loop
    select array_agg(s.subscription_id) into visible from realtime.subscription s
     where s.entity = entity_ and s.claims_role = role_ and s.action_filter in ('*', action_);
    if action_ <> 'DELETE' and pk_where is null then
      return query select head, rls, visible, array['Error 400: Bad Request, no primary key'];
      continue;
    end if;
    if action_ <> 'DELETE' and exists (
         select 1 from jsonb_array_elements(cols) c
          where (c ->> 'is_pk')::boolean and not has_column_privilege(role_, entity_, c ->> 'name', 'SELECT')) then
      return query select head, rls, visible, array['Error 401: Unauthorized'];
      continue;
    end if;
    visible := '{}';
    for sub in
      select s.subscription_id, s.claims, s.filters from realtime.subscription s
       where s.entity = entity_ and s.claims_role = role_ and s.action_filter in ('*', action_)
    loop
      continue when not (realtime.passes_filters(cols, sub.filters)
                         or (action_ = 'DELETE' and realtime.passes_filters(old_cols, sub.filters)));
      if rls and action_ <> 'DELETE' then
        -- Realtime's check: the role, with the subscriber's claims, selects the row by its key.
        begin
          perform set_config('role', role_::text, true), set_config('request.jwt.claims', sub.claims::text, true);
          execute format('select exists (select 1 from %s where %s)', entity_, pk_where) into seen;
          perform set_config('role', null, true);
        exception when insufficient_privilege then
          perform set_config('role', null, true);
          seen := false;
        end;
        continue when not seen;
      end if;
      visible := visible || sub.subscription_id;
    end loop;
    continue when cardinality(visible) = 0;
    select array_agg(a.attname::text order by a.attnum) into readable from pg_attribute a
     where a.attrelid = entity_ and a.attnum > 0 and not a.attisdropped
       and has_column_privilege(role_, entity_, a.attname, 'SELECT');
    body := head || jsonb_build_object(
      'commit_timestamp', to_char((wal ->> 'timestamp')::timestamptz at time zone 'utc',
                                  'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'columns', (select coalesce(jsonb_agg(jsonb_build_object('name', a.attname, 'type', t.typname)
                                            order by a.attnum), '[]')
                    from pg_attribute a join pg_type t on t.oid = a.atttypid
                   where a.attrelid = entity_ and a.attname = any(readable)));
    if action_ in ('INSERT', 'UPDATE') then
      body := body || jsonb_build_object('record', (
        select coalesce(jsonb_object_agg(c ->> 'name', c -> 'value'), '{}') from jsonb_array_elements(cols) c
         where c ->> 'name' = any(readable) and (not too_big or octet_length((c -> 'value')::text) <= 64)));
    end if;
    if action_ in ('UPDATE', 'DELETE') then
      body := body || jsonb_build_object('old_record', (
        select coalesce(jsonb_object_agg(c ->> 'name', c -> 'value'), '{}') from jsonb_array_elements(old_cols) c
         where c ->> 'name' = any(readable) and (not too_big or octet_length((c -> 'value')::text) <= 64)
           and (action_ = 'UPDATE' or not rls or (c ->> 'is_pk')::boolean)));
    end if;
    return query select body, rls, visible,
      case when too_big then array['Error 413: Payload Too Large'] else '{}'::text[] end;
  end loop;
end $fn$;

-- wal2json's add-tables escapes . , * and \ in names with a backslash.
create or replace function realtime.wal2json_name(schema_name name, table_name name) returns text
  language sql immutable as $fn$
  select regexp_replace(schema_name, '([\\,.*])', '\\\1', 'g') || '.'
         || regexp_replace(table_name, '([\\,.*])', '\\\1', 'g')
$fn$;

-- The poll: the slot's changes for the publication's tables and actions, each applied to the
-- subscribers, then one last row (wal null) with how many changes the slot gave.
create or replace function realtime.list_changes(publication name, slot_name name, max_changes integer,
                                                 max_record_bytes integer)
  returns table (wal jsonb, is_rls_enabled boolean, subscription_ids uuid[], errors text[], slot_changes_count bigint)
  language plpgsql as $fn$
declare
  actions text;
  tables text;
  consumed bigint := 0;
  change record;
begin
  select concat_ws(',', case when bool_or(p.pubinsert) then 'insert' end,
                        case when bool_or(p.pubupdate) then 'update' end,
                        case when bool_or(p.pubdelete) then 'delete' end),
         coalesce(string_agg(realtime.wal2json_name(t.schemaname, t.tablename), ',')
                  filter (where t.tablename is not null), '')
    into actions, tables
    from pg_publication p left join pg_publication_tables t on t.pubname = p.pubname
   where p.pubname = publication;
  if coalesce(tables, '') <> '' and coalesce(actions, '') <> '' then
    for change in
      select x.data::jsonb as data from pg_logical_slot_get_changes(slot_name, null, max_changes,
        'include-pk', 'true', 'include-transaction', 'false', 'include-timestamp', 'true',
        'include-type-oids', 'true', 'format-version', '2', 'actions', actions, 'add-tables', tables) x
    loop
      consumed := consumed + 1;
      return query select r.wal_out, r.is_rls_enabled, r.subscription_ids, r.errors, null::bigint
                     from realtime.apply_rls(change.data, max_record_bytes) r;
    end loop;
  end if;
  return query select null::jsonb, null::boolean, null::uuid[], null::text[], consumed;
end $fn$;

insert into realtime.schema_migrations values (20260101000001, now()) on conflict do nothing;
"""

#: Realtime's prepare_replication: the temporary wal2json slot, unless it exists already.
PREPARE_SLOT = (
    "select case when not exists (select 1 from pg_replication_slots where slot_name = %(slot)s)"
    " then (select 1 from pg_create_logical_replication_slot(%(slot)s, 'wal2json', true)) else 1 end"
)

#: The tables of the publication (an empty one means: no slot, nothing to poll).
PUBLICATION_TABLES = "select count(*) from pg_publication_tables where pubname = %(publication)s"

LIST_CHANGES = (
    "select wal, subscription_ids, errors, slot_changes_count"
    " from realtime.list_changes(%(publication)s, %(slot)s, %(max_changes)s, %(max_record_bytes)s)"
)

#: One row per binding, for every published table the binding names; none means the binding
#: names no published table (Realtime's "Subscription insert failed with 0 rows").
INSERT_SUBSCRIPTION = """
insert into realtime.subscription as s (subscription_id, entity, filters, claims, action_filter)
select %(id)s::uuid, format('%%I.%%I', p.schemaname, p.tablename)::regclass, %(filters)s::jsonb, %(claims)s::jsonb,
       %(action)s
  from pg_publication_tables p
 where p.pubname = %(publication)s
   and (%(schema)s = '*' or p.schemaname = %(schema)s)
   and (%(table)s = '*' or p.tablename = %(table)s)
on conflict (subscription_id, entity, filters, action_filter) do update set claims = excluded.claims
returning s.id
"""

DELETE_SUBSCRIPTIONS = "delete from realtime.subscription where subscription_id = any(%(ids)s::uuid[])"
DELETE_ALL_SUBSCRIPTIONS = "delete from realtime.subscription"
