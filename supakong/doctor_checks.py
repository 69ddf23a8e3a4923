"""``doctor``'s checklist, pure: :class:`~supakong.doctor_facts.DoctorFacts` →
:func:`build_checklist` → ✓/✗ with a fix for every ✗ (the database's table checks are
:mod:`supakong.doctor_tables`', the key checks of today's stack :mod:`supakong.doctor_keys`',
Kong's running config :mod:`supakong.doctor_hash`'). Secrets are compared, never printed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import jwt

from .checks import FAIL, MARKS, OK, SKIP, Check
from .doctor_facts import KEY_CONSUMERS, DoctorFacts, config_entities, text_sha256
from .doctor_hash import judge_running_config
from .doctor_keys import KeyFacts, doctor_key_checks
from .doctor_tables import doctor_table_checks
from .dokploy.policy import doctor_check, dokploy_notes
from .envoy import SWITCH_TO_KONG, envoy_detail
from .hostprofile import build_profile
from .kong.entities import Entities, effective_upstream, parent_of
from .kong.findings import ERROR, WARNING
from .kong.pitfalls import realtime_routes
from .kong.validate import validate_kong_config
from .secrets import mask, register_secret
from .verify_diagnose import EXPIRED_FIX, JWT_SECRET_FIX, TENANT_SOURCE

#: Supabase's own realtime entries (public): the file self-hosting ships.
REALTIME_ROUTE_DOCS = "see supabase/supabase docker/volumes/api/kong.yml (realtime-v1-ws)"


def check_ssh(f: DoctorFacts) -> Check:
    """The host is reachable over SSH (everything but the probe needs it)."""
    if f.ssh_error:
        return Check(
            "ssh",
            FAIL,
            f.ssh_error,
            "fix SSH access first (ansible_host/ansible_user/ssh_config_file in the inventory, known_hosts)",
        )
    return Check("ssh", OK, f"connected to {f.host}, read-only")


def check_live_config(f: DoctorFacts) -> Check:
    """The config Kong loads is valid for this Kong (schema, edition, Supabase pitfalls)."""
    name = "live config"
    notes = (f.effective_note,) if f.effective_note else ()
    if f.ssh_error:
        return Check(name, SKIP, "not read: no SSH")
    text = f.config_text
    if text is None:
        return Check(
            name,
            FAIL,
            f"{f.config_path} does not exist on the host",
            "check kong_config_path in the inventory, or create it with `fab deploy-kong`",
            notes,
        )
    if f.target is None:
        return Check(name, SKIP, f"not validated: the Kong version is unknown ({f.target_error})", notes=notes)
    findings = validate_kong_config(text, f.target, source=f.config_label)
    errors = [x for x in findings if x.severity == ERROR]
    warnings = [x for x in findings if x.severity == WARNING]
    listed = notes + tuple(x.as_line() for x in (*errors, *warnings))
    if errors:
        return Check(
            name,
            FAIL,
            f"{f.config_label}: {len(errors)} error(s) for {f.target.label}",
            "correct what the errors say (each ends with its hint), then `fab deploy-kong -H "
            f"{f.host}` validates the file before it touches the host",
            listed,
        )
    extra = f" ({len(warnings)} warning(s))" if warnings else ""
    return Check(name, OK, f"{f.config_label} is valid for {f.target.label}{extra}", notes=listed)


def check_config_loaded(f: DoctorFacts) -> Check:
    """Kong runs the file that is on the host (no restart pending, the mount is that file)."""
    name = "config loaded"
    if f.ssh_error or f.kong is None or f.file is None:
        return Check(name, SKIP, "not read: no SSH")
    if not f.kong.running or f.kong.restarting:
        return Check(name, SKIP, f"{f.kong_container} is not running")
    if not f.file.exists:
        return Check(name, SKIP, f"{f.config_path} does not exist")
    if f.reloaded:
        # A single-file bind mount keeps its start-time inode: the container sees the new
        # template only at its next start, which is the file Kong then renders and loads.
        return Check(
            name, OK, f"{f.config_path} was reloaded into {f.kong_container} through its Admin API (no restart)"
        )
    if f.mount_sha256 is None:
        return Check(name, SKIP, f"could not read {f.config_mount} inside {f.kong_container}")
    if f.mount_sha256 != f.file.sha256:
        return Check(
            name,
            FAIL,
            f"{f.kong_container} sees another file at {f.config_mount} than {f.config_path} (the file was"
            " replaced by rename after Kong started: a single-file bind mount keeps the old inode)",
            f"restart {f.kong_container} (`fab deploy-kong -H {f.host}` restarts it), and check its bind mount",
        )
    if f.file.mtime > f.kong.started_at:
        return Check(
            name,
            FAIL,
            f"{f.config_path} changed after {f.kong_container} started: Kong still runs the previous config",
            f"restart Kong: `fab deploy-kong -H {f.host}` restarts when the file is newer than the running Kong",
        )
    return Check(name, OK, f"{f.kong_container} started after the last change of {f.config_path} and sees it")


def check_container(f: DoctorFacts, role: str) -> Check:
    """The Kong or Realtime container exists, runs, is healthy; its restart count."""
    state, name = (f.kong, f.kong_container) if role == "kong" else (f.realtime, f.realtime_container)
    title = f"{role} container"
    if state is None:
        return Check(title, SKIP, "not read: no SSH")
    if not state.exists and role == "kong" and f.envoy is not None:
        return Check(title, FAIL, f"{name} does not exist: {envoy_detail(f.envoy)}", SWITCH_TO_KONG)
    if not state.exists:
        return Check(
            title,
            FAIL,
            f"{name} does not exist",
            f"check {role}_container in the inventory (`docker ps -a` on the host)",
        )
    detail = f"{name} {state.describe()}"
    if state.restarting or (state.running and state.restart_count and state.health not in (None, "healthy")):
        return Check(title, FAIL, f"{detail}: crash loop", _crash_fix(f, role))
    if not state.running:
        return Check(title, FAIL, detail, f"start it: `docker start {name}`; {_crash_fix(f, role)}")
    if state.health == "unhealthy":
        return Check(title, FAIL, detail, _crash_fix(f, role))
    if state.health == "starting":
        return Check(
            title, FAIL, f"{detail}: still starting", f"wait a few seconds and run `fab doctor -H {f.host}` again"
        )
    return Check(title, OK, detail)


def _crash_fix(f: DoctorFacts, role: str) -> str:
    if role == "kong":
        return (
            f"read `fab logs -H {f.host}` (a refused kong.yml logs 'error parsing declarative config';"
            " see the live config check)"
        )
    return f"read `fab logs -H {f.host}`; Kong answers 502 while Realtime is down"


def check_kong_target(f: DoctorFacts) -> Check:
    """Kong's version, edition and plugins, as read from the container (or pinned)."""
    name = "kong version"
    if f.target is None:
        if f.ssh_error:
            return Check(name, SKIP, "not read: no SSH")
        return Check(name, FAIL, f.target_error, "pin kong_version (and kong_edition, kong_plugins) in the inventory")
    image = f" ({f.kong.image})" if f.kong is not None and f.kong.image else ""
    detail = f"{f.target.label}{image}, plugins: {','.join(f.target.plugins)}"
    if f.kong is not None and f.kong.exists:
        p = build_profile(f.kong, f.realtime)
        detail += f"; entrypoint {p.expansion}, router {p.router_flavor} ({p.router_flavor_source})"
        if p.owner.markers or p.dokploy:  # noted, not failed: deploy-kong goes through Dokploy
            return Check(
                name, OK, detail, notes=dokploy_notes(None, p.owner.markers, None)
            )  # the dokploy row says more
    return Check(name, OK, detail)


def check_dokploy(f: DoctorFacts) -> list[Check]:
    """Dokploy-managed: appName, mode and the file mount, and how deploy-kong writes it."""
    if f.kong is None or not f.kong.exists:
        return []
    row = doctor_check(build_profile(f.kong).dokploy, f.host_config)
    if row is None:
        return []
    status, detail, fix, notes = row
    if status == "ok" and f.dokploy_drift:
        return [Check("dokploy", FAIL, detail, f.dokploy_drift)]
    return [Check("dokploy", OK if status == "ok" else FAIL, detail, fix, notes=notes)]


def check_tenant(f: DoctorFacts) -> Check:
    """Realtime's tenant equals the first label of the Host Kong sends on the realtime route."""
    name = "realtime tenant"
    if f.ssh_error:
        return Check(name, SKIP, "not read: no SSH")
    entities = config_entities(f.config_text)
    if entities is None:
        return Check(name, SKIP, "the live config cannot be read (see the live config check)")
    tenant, source = f.tenant
    routes = realtime_routes(entities)
    if not routes:
        return Check(
            name,
            FAIL,
            "the live config has no Realtime route: /realtime/v1/websocket answers 404 no route",
            f"add Supabase's realtime-v1-ws service (url http://{f.realtime_upstream}/socket, route paths"
            f" [/realtime/v1/], strip_path true): `fab deploy-kong -H {f.host}` renders it; {REALTIME_ROUTE_DOCS}",
        )
    for route in routes:
        problem = _route_tenant_problem(f, entities, route.get("name") or route.path, route, tenant, source)
        if problem is not None:
            return problem
    service = parent_of(routes[0], "services", entities)
    upstream = effective_upstream(service.data).host if service else None
    return Check(name, OK, f"Kong sends Host {upstream} → tenant {tenant!r} = Realtime's tenant ({source})")


def _route_tenant_problem(
    f: DoctorFacts, entities: Entities, label: object, route: Any, tenant: str, source: str
) -> Check | None:
    name = "realtime tenant"
    service = parent_of(route, "services", entities)
    upstream = effective_upstream(service.data).host if service else None
    if route.get("preserve_host") is True:
        browser_host = urlsplit(f.public_url).hostname or f.public_url
        seen = browser_host.split(".", 1)[0]
        return Check(
            name,
            FAIL,
            f"preserve_host: true on route {label}: Realtime gets the browser's Host {browser_host} → tenant"
            f" {seen!r}, but its tenant is {tenant!r} ({source}): 'Tenant not found'",
            "remove preserve_host from the realtime route (default false) so Kong sends the service host"
            f" {upstream or 'of the realtime service'}; `supakong init {f.host} --fix` removes it from the"
            f" host's template, then `fab deploy-kong -H {f.host}`; {TENANT_SOURCE}",
        )
    if not upstream:
        return None
    first = upstream.split(".", 1)[0]
    if first.lower() == tenant.lower():
        return None
    return Check(
        name,
        FAIL,
        f"Kong sends Host {upstream} → tenant {first!r}, but Realtime's tenant is {tenant!r} ({source}):"
        " 'Tenant not found'",
        f"set SELF_HOST_TENANT_NAME={first} on {f.realtime_container} and recreate it, or point the realtime"
        f" service url at a name of {f.realtime_container} whose first label is {tenant} and"
        f" `fab deploy-kong -H {f.host}`; {TENANT_SOURCE}",
    )


def check_anon_key(f: DoctorFacts) -> Check:
    """The inventory's anon key is a JWT signed with Realtime's API_JWT_SECRET, role anon, not expired."""
    name = "anon key"
    if f.realtime is None or not f.realtime.exists:
        return Check(name, SKIP, "not checked: the realtime container could not be read")
    secret = f.realtime.env.get("API_JWT_SECRET", "")
    if not secret:
        return Check(
            name,
            FAIL,
            f"{f.realtime_container} has no API_JWT_SECRET in its environment, so it cannot check any key",
            f"set API_JWT_SECRET=${{JWT_SECRET}} on {f.realtime_container} and recreate it",
        )
    return jwt_check(f.inventory_keys.get("anon", ""), secret, f.realtime_container, f.now)


def jwt_check(key: str, secret: str, realtime_container: str, now: float) -> Check:
    """The anon key against Realtime's secret: signature, then ``exp`` and ``role`` (what
    Realtime checks on the handshake). Neither value ever appears in the result."""
    name = "anon key"
    register_secret(secret)
    where = f"API_JWT_SECRET of {realtime_container}"
    try:
        claims = jwt.decode(
            key,
            secret,
            algorithms=["HS256", "HS384", "HS512"],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )
    except jwt.InvalidSignatureError:
        return Check(
            name,
            FAIL,
            f"SUPABASE_ANON_KEY is not signed with {where}: Realtime answers 401 'Failed to validate JWT"
            " signature' (JWT_SECRET and ANON_KEY out of sync)",
            JWT_SECRET_FIX,
        )
    except jwt.InvalidAlgorithmError:
        return Check(
            name, FAIL, "SUPABASE_ANON_KEY is not an HS256 JWT", "issue the anon key with HS256 from JWT_SECRET"
        )
    except jwt.InvalidTokenError as exc:
        return Check(
            name,
            FAIL,
            f"SUPABASE_ANON_KEY is not a JWT ({mask(str(exc))})",
            "put the project's anon key (a JWT signed with JWT_SECRET) in the secrets file",
        )
    return _claims_check(claims, where, now)


def _claims_check(claims: Mapping[str, Any], where: str, now: float) -> Check:
    name = "anon key"
    exp, role = claims.get("exp"), claims.get("role")
    if not isinstance(exp, int | float) or role is None:
        return Check(
            name,
            FAIL,
            "SUPABASE_ANON_KEY lacks the `exp` or `role` claim Realtime requires",
            "issue a Supabase anon key (claims role and exp) from JWT_SECRET",
        )
    expires = datetime.fromtimestamp(exp, UTC).strftime("%Y-%m-%d %H:%M UTC")
    if exp <= now:
        return Check(name, FAIL, f"SUPABASE_ANON_KEY expired at {expires}", EXPIRED_FIX)
    if role != "anon":
        return Check(
            name,
            FAIL,
            f"SUPABASE_ANON_KEY carries role {role!r}, not 'anon' (browsers would get that role's rights)",
            "put the anon key (role anon) in SUPABASE_ANON_KEY",
        )
    return Check(name, OK, f"signed with {where}, role anon, expires {expires}")


def live_key_hashes(entities: Entities) -> dict[str, set[str]]:
    """sha256 of every keyauth credential, by consumer username (keys themselves never leave)."""
    hashes: dict[str, set[str]] = {}
    for credential in entities.of_kind("keyauth_credentials"):
        consumer = parent_of(credential, "consumers", entities)
        key = credential.get("key")
        if consumer is not None and isinstance(key, str):
            hashes.setdefault(str(consumer.get("username") or consumer.get("id")), set()).add(text_sha256(key))
    return hashes


def check_keys(f: DoctorFacts) -> Check:
    """The live config's keyauth credentials hold the keys the inventory has (compared by hash)."""
    name = "keys"
    if f.ssh_error:
        return Check(name, SKIP, "not read: no SSH")
    entities = config_entities(f.keys_text)
    if entities is None and f.live_text is not None and f.effective_text is None and f.keys_text is None:
        return Check(name, SKIP, "cannot tell what Kong's entrypoint makes of the live config without its shell")
    if entities is None:
        return Check(name, SKIP, "the live config cannot be read (see the live config check)")
    live = live_key_hashes(entities)
    problems = []
    for consumer, env_name in KEY_CONSUMERS:
        problem = _key_problem(live, consumer, env_name, f.inventory_keys.get(consumer, ""))
        if problem:
            problems.append(problem)
    if problems:
        return Check(
            name,
            FAIL,
            "; ".join(problems) + ": Kong answers 401 to the inventory's keys (stale key)",
            f"`fab deploy-kong -H {f.host}` renders kong.yml with the inventory's keys and restarts Kong;"
            " if the live keys are the current ones, put them in the secrets file instead",
        )
    names = " and ".join(env for _, env in KEY_CONSUMERS)
    return Check(name, OK, f"the inventory's {names} are the keys of consumers anon and service_role")


def _key_problem(live: Mapping[str, set[str]], consumer: str, env_name: str, value: str) -> str:
    if not value:
        return f"{env_name} is not set in the inventory's secrets"
    digest = text_sha256(value)
    if digest in live.get(consumer, set()):
        return ""
    holder = next((other for other, keys in live.items() if digest in keys), None)
    if holder is not None:
        return f"the inventory's {env_name} is a key of consumer {holder}, not {consumer}"
    if consumer not in live:
        return f"the live config has no key-auth credential for consumer {consumer}"
    return f"the inventory's {env_name} is not among the {len(live[consumer])} key(s) of consumer {consumer}"


def check_verification(f: DoctorFacts) -> Check:
    """The browser's path, probed: SUBSCRIBED with every probe passed."""
    name = "realtime path"
    if f.verification is None:
        return Check(name, SKIP, f"not probed: {f.verification_note}" if f.verification_note else "not probed")
    report = f.verification.worst
    total = sum(stage.seconds for _, r in f.verification.reports for stage in r.stages) * 1000
    kinds = [label for label, _ in f.verification.reports if label]
    with_keys = f" with the {' and the '.join(kinds)}" if kinds else ""
    if f.verification.ok:
        return Check(name, OK, f"{report.state}{with_keys}, every probe passed ({total:.0f} ms)")
    failed = ", ".join(stage.name for stage in report.failed_stages)
    cause = report.diagnosis.cause if report.diagnosis else f"failed: {failed}"
    fix = report.diagnosis.fix if report.diagnosis else "see the stages below"
    return Check(name, FAIL, f"{report.state} ({failed or 'no stage passed'}): {cause}", fix)


def key_facts(f: DoctorFacts) -> KeyFacts:
    """What the opaque-key checks (:mod:`supakong.doctor_keys`) read of the doctor's facts."""
    return KeyFacts(
        kong_container=f.kong_container,
        realtime_container=f.realtime_container,
        kong_env=f.kong.env if f.kong is not None else {},
        realtime_env=f.realtime.env if f.realtime is not None and f.realtime.exists else None,
        source=f.live_text,
        loaded=f.effective_text,
        local_publishable=f.local_publishable,
        now=f.now,
    )


def build_checklist(f: DoctorFacts) -> list[Check]:
    """Every check of ``fab doctor``, in order: config, containers, Kong, tenant, keys, path."""
    return [
        check_ssh(f),
        check_live_config(f),
        judge_running_config(f.running_config, check_config_loaded(f), f.config_path, f.host, f.kong_container),
        check_container(f, "kong"),
        check_container(f, "realtime"),
        check_kong_target(f),
        *check_dokploy(f),
        check_tenant(f),
        check_anon_key(f),
        check_keys(f),
        *doctor_key_checks(key_facts(f)),
        *doctor_table_checks(f.tables),
        check_verification(f),
    ]


def checklist_ok(checks: Iterable[Check]) -> bool:
    """True when every check passed (a skipped check is not a pass)."""
    return all(check.status == OK for check in checks)


def checklist_lines(checks: list[Check]) -> list[str]:
    """``✓ name  detail`` rows; notes below; ``fix:`` below every ✗."""
    width = max((len(check.name) for check in checks), default=0)
    rows = []
    for check in checks:
        rows.append(f"{MARKS[check.status]} {check.name:<{width}}  {check.detail}")
        rows.extend(f"    {note}" for note in check.notes)
        if check.status == FAIL and check.fix:
            rows.append(f"    fix: {check.fix}")
    return rows
