"""``doctor``: a read-only checklist of a host's Realtime path that names what is wrong and
how to fix it (STYLE: look, then decide).

* gathering (I/O, here): read the host over SSH without changing it (the live kong file, the
  config Kong actually loaded, both containers and their env, the database, Kong's running
  config hash, Dokploy's stored copy) and probe the browser's path
  (:mod:`supakong.verify_run`);
* deciding (pure): :class:`~supakong.doctor_facts.DoctorFacts` →
  :func:`~supakong.doctor_checks.build_checklist` → ✓/✗ with a fix for every ✗.

Secrets (the anon key, Realtime's API_JWT_SECRET, the keys in kong.yml) are compared, never
printed; every line goes through :class:`supakong.report.Output`, which masks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .checks import OK
from .container import ContainerState, exec_in_container, probed_healthy
from .doctor_checks import build_checklist, checklist_lines
from .doctor_facts import KEY_CONSUMERS, DoctorFacts
from .doctor_hash import read_running_config
from .doctor_tables import host_table, read_table_readiness
from .dokploy.apply import stored_copy_drift
from .envoy import find_envoy
from .errors import DeployError, InventoryError
from .hostprofile import build_profile, kong_target
from .inventory import HostConfig
from .kong.target import KongTarget
from .look import look
from .remote_file import read_remote_text
from .report import HostResult, Output
from .secrets import Secrets, load_host_secrets, register_env_secrets
from .transport import HostConnection
from .verify_run import VerifyOptions, verification_lines, verify_host


def gather_facts(host: HostConfig, secrets: Secrets, options: VerifyOptions) -> DoctorFacts:
    """Read ``host`` over SSH (nothing is changed) and probe its Realtime path."""
    base = DoctorFacts(
        host=host.name,
        public_url=host.public_url,
        config_path=host.kong_config_path,
        config_mount=host.kong_config_mount,
        kong_container=host.kong_container,
        realtime_container=host.realtime_container,
        realtime_upstream=f"{host.realtime_upstream_host}:{host.realtime_upstream_port}",
        inventory_keys={consumer: secrets.get(env) for consumer, env in KEY_CONSUMERS},
        local_publishable=secrets.get("SUPABASE_PUBLISHABLE_KEY"),
        inventory_tenant=host.realtime_tenant,
        now=time.time(),
        host_config=host,
    )
    try:
        with HostConnection(host) as conn:
            facts = read_host(conn, host, base)
            kong_env = facts.kong.env if facts.kong is not None else {}
            register_env_secrets(kong_env)
            # No local key: the keys are the Kong container's own (what its kong.yml references).
            facts = replace(facts, inventory_keys=_keys(secrets, kong_env))
            facts = _probe(facts, host, secrets, options, conn=conn, kong_env=kong_env)
            # after the probe: its join started Realtime's CDC workers, so their slot shows
            tables = read_table_readiness(
                conn.engine(),
                host_table(options.table, host.verify_table),
                facts.tenant[0],
                host.realtime_container,
                host.db_container,
            )
    except DeployError as exc:
        facts = _probe(replace(base, ssh_error=str(exc)), host, secrets, options, with_logs=False, kong_env={})
        tables = None
    return replace(facts, tables=tables, dokploy_drift=_dokploy_drift(facts, host))


def _dokploy_drift(facts: DoctorFacts, host: HostConfig) -> str | None:
    if facts.kong is None or not facts.kong.exists or facts.file is None:
        return None
    return stored_copy_drift(host, build_profile(facts.kong).dokploy, facts.file.sha256)


def _keys(secrets: Secrets, kong_env: Mapping[str, str]) -> dict[str, str]:
    return {consumer: secrets.get(env) or kong_env.get(env, "") for consumer, env in KEY_CONSUMERS}


def _probe(facts: DoctorFacts, host: HostConfig, secrets: Secrets, options: VerifyOptions, **how: Any) -> DoctorFacts:
    """``facts`` with the probe of the Realtime path (or why there is none: no key to use)."""
    try:
        return replace(facts, verification=verify_host(host, secrets, options, **how))
    except InventoryError as exc:
        return replace(facts, verification_note=str(exc))


def read_host(conn: HostConnection, host: HostConfig, base: DoctorFacts) -> DoctorFacts:
    """The live file, what Kong loaded, both containers and the Kong target; read-only."""
    state, _ = look(conn, host.kong_config_path, host.kong_container, host.realtime_container)
    assert state.realtime is not None  # look() inspects Realtime when it is named
    live_text = read_remote_text(conn, host.kong_config_path) if state.file.exists else None
    target, target_error = _target(host, state.kong, state.realtime)
    api = conn.engine()
    effective, source, note = _effective_config(api, host, state.kong)
    mount_sha = _mount_sha256(api, host, state.kong)
    envoy = None if state.kong.exists else find_envoy(api)
    content = live_text.encode("utf-8") if live_text is not None else None
    running = read_running_config(api, state.kong, build_profile(state.kong), content) if content is not None else None
    # "starting" only means Docker's first probe is still an interval away: run the
    # container's healthcheck now (read-only, the command Docker itself would run).
    kong = probed_healthy(api, state.kong) or state.kong
    realtime = probed_healthy(api, state.realtime) or state.realtime
    return replace(
        base,
        file=state.file,
        kong=kong,
        realtime=realtime,
        live_text=live_text,
        effective_text=effective,
        effective_source=source,
        effective_note=note,
        mount_sha256=mount_sha,
        running_config=running,
        reloaded=state.file_is_loaded,
        target=target,
        target_error=target_error,
        envoy=envoy,
    )


def _target(host: HostConfig, kong: ContainerState, realtime: ContainerState) -> tuple[KongTarget | None, str]:
    try:
        return kong_target(host, build_profile(kong, realtime)), ""
    except (DeployError, ValueError) as exc:
        return None, str(exc)


def _effective_config(api: Any, host: HostConfig, kong: ContainerState) -> tuple[str | None, str, str]:
    """(text, label, note): ``KONG_DECLARATIVE_CONFIG`` read inside the running container,
    i.e. the file after the entrypoint expanded its ``$VARS``; else None and why."""
    fallback = f"validated {host.kong_config_path} on the host instead"
    path = kong.env.get("KONG_DECLARATIVE_CONFIG")
    if not kong.exists or not kong.running or kong.restarting:
        return None, "", f"{host.kong_container} is not running: {fallback}"
    if not path:
        return None, "", f"KONG_DECLARATIVE_CONFIG is not set in {host.kong_container}: {fallback}"
    try:
        code, output = exec_in_container(api, host.kong_container, ["cat", path])
    except DeployError as exc:
        return None, "", f"cannot read {path} in {host.kong_container} ({exc}): {fallback}"
    if code != 0:
        return None, "", f"cannot read {path} in {host.kong_container} (exit {code}): {fallback}"
    return output, f"{path} in {host.kong_container}", ""


def _mount_sha256(api: Any, host: HostConfig, kong: ContainerState) -> str | None:
    if not kong.running or kong.restarting:
        return None
    try:
        code, output = exec_in_container(api, host.kong_container, ["sha256sum", host.kong_config_mount])
    except DeployError:
        return None
    words = output.split()
    return words[0] if code == 0 and words else None


def doctor_host(host: HostConfig, options: VerifyOptions, out: Output) -> HostResult:
    """``fab doctor`` on one host: gather, decide, print the checklist and the probe."""
    out.line(f"doctor {host.name} ({host.public_url})", host.name)
    facts = gather_facts(host, load_host_secrets(host), options)
    checks = build_checklist(facts)
    out.lines([f"  {row}" for row in checklist_lines(checks)], host.name)
    if facts.verification is not None:
        out.lines([f"  {row}" for row in verification_lines(facts.verification)], host.name)
    failed = [check for check in checks if check.status != OK]
    result = HostResult(host=host.name, verify_state=facts.verification.report.state if facts.verification else None)
    if failed:
        result.status = "failed"
        result.message = f"{len(failed)} check(s) not passed, first: {failed[0].name}: {failed[0].detail}"
    else:
        result.message = f"all {len(checks)} checks passed"
    return result
