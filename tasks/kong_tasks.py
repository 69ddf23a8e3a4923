"""Tasks that look at a Kong config without deploying it: check-kong, render-kong."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fabric import task
from invoke import Context

from supakong.container import inspect_container
from supakong.deploy import look_at_host
from supakong.envrefs import check_references
from supakong.hostprofile import HostProfile, build_profile, kong_target
from supakong.inventory import INLINE, HostConfig
from supakong.render import render_kong_config, write_private_file
from supakong.runner import exits_cleanly, fail, select_hosts
from supakong.secrets import load_host_secrets, mask
from supakong.transport import HostConnection

if TYPE_CHECKING:
    from supakong.kong.target import KongTarget


@task(
    help={
        "file": "Validate this file (no inventory needed)",
        "kong-version": "Kong version to validate for, e.g. 2.8.1 or 3.9.3 (default 2.8.1 with --file)",
        "edition": "oss or enterprise",
        "plugins": "Comma-separated KONG_PLUGINS (default: Supabase's list for that Kong version)",
        "router-flavor": "KONG_ROUTER_FLAVOR on 3.x: traditional, traditional_compatible (Kong's default), expressions",
        "expansion": "How the entrypoint expands the file: eval (2.x default), awk (3.x default), none",
        "realtime-tenant": "The Realtime tenant (default realtime-dev)",
        "json": 'Print {"findings": [...]} instead of text',
        "offline": "With -H: do not read version/plugins/tenant from the host's containers",
    }
)
@exits_cleanly
def check_kong(
    c: Context,
    file: str | None = None,
    kong_version: str | None = None,
    edition: str | None = None,
    plugins: str | None = None,
    realtime_tenant: str | None = None,
    router_flavor: str | None = None,
    expansion: str | None = None,
    json: bool = False,
    offline: bool = False,
) -> None:
    """Validate a Kong declarative config (a --file, or -H HOST's render); exit 1 on an error."""
    choices = {"router_flavor": router_flavor, "expansion": expansion}
    if file:
        text, source = _read(file), file
        target = _target(kong_version or "2.8.1", edition, plugins, realtime_tenant, **choices)
    else:
        [host] = select_hosts(c, require=True)[:1]
        secrets, source = load_host_secrets(host), str(host.template)
        if offline or host.kong_version:
            text = render_kong_config(host, secrets)
            target = _target(
                kong_version or host.kong_version or "2.8.1",
                edition or host.kong_edition,
                plugins or host.kong_plugins,
                realtime_tenant or host.realtime_tenant,
                **choices,
            )
        else:
            profile = _profile(host, realtime=True)
            text = render_kong_config(
                host, secrets, held=profile.env_names, expansion=profile.expansion, router_flavor=profile.router_flavor
            )
            check_references(text, profile, source=source, host=host.name)
            target = _override(kong_target(host, profile), **choices)
    from supakong.kong.findings import findings_to_json, has_errors  # loaded when a task validates
    from supakong.kong.validate import validate_kong_config

    findings = validate_kong_config(text, target, source=source)
    if json:
        print(mask(findings_to_json(findings)))
    else:
        for finding in findings:
            print(mask(finding.as_line()))
        verdict = "REFUSED" if has_errors(findings) else "ok"
        print(f"{source}: {verdict} for {_describe(target)} ({len(findings)} findings)")
    if has_errors(findings):
        fail(f"{source}: the config has errors", 1) if not json else sys.exit(1)


@task(
    help={
        "out": "Write the real (unmasked) file here, mode 0600",
        "offline": "Do not read which credentials the host's Kong holds (assume its two keys)",
    }
)
@exits_cleanly
def render_kong(c: Context, out: str | None = None, offline: bool = False) -> None:
    """Render -H HOST's kong-simple.yml: masked on stdout, or the real file with --out."""
    [host] = select_hosts(c, require=True)[:1]
    secrets = load_host_secrets(host)
    if offline or host.kong_secrets == INLINE:
        text = render_kong_config(host, secrets)
    else:  # the file references the credentials the host's Kong holds: ask it which
        profile = _profile(host)
        text = render_kong_config(
            host, secrets, held=profile.env_names, expansion=profile.expansion, router_flavor=profile.router_flavor
        )
        check_references(text, profile, source=str(host.template), host=host.name)
    if out is None:
        sys.stdout.write(mask(text))
        return
    path = Path(out)
    write_private_file(path, text)
    print(f"wrote {path} (mode 0600, contains secrets)")


def _profile(host: HostConfig, realtime: bool = False) -> HostProfile:
    """The host's profile, from one read-only look (Realtime too for the validator's tenant)."""
    with HostConnection(host) as conn:
        if realtime:
            state = look_at_host(conn, host)
            return build_profile(state.kong, state.realtime)
        return build_profile(inspect_container(conn.engine(), host.kong_container))


def _read(file: str) -> str:
    try:
        return Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{file}: cannot read ({exc.strerror})")


def _target(
    version: str,
    edition: str | None,
    plugins: str | None,
    tenant: str | None,
    *,
    router_flavor: str | None = None,
    expansion: str | None = None,
) -> KongTarget:
    from supakong.kong.target import KongTarget

    try:
        base = KongTarget.from_image(f"kong:{version}", plugins, tenant or "realtime-dev")
    except ValueError as exc:
        fail(f"--kong-version: {exc}")
    return _override(base, edition=edition, router_flavor=router_flavor, expansion=expansion)


def _override(target: KongTarget, **choices: str | None) -> KongTarget:
    """The target with the flags the user gave; a bad value is a one-line error naming the flag."""
    try:
        return target.with_overrides(**choices)
    except ValueError as exc:
        flag = next((name for name, value in choices.items() if value is not None and name in str(exc)), "")
        fail(f"--{flag.replace('_', '-')}: {exc}" if flag else str(exc))


def _describe(target: KongTarget) -> str:
    """`Kong 3.9.3 oss (router expressions, awk entrypoint)`."""
    details = [f"{target.expansion} entrypoint" if target.expansion != "none" else "no entrypoint expansion"]
    if target.at_least((3, 0)):
        details.insert(0, f"router {target.router_flavor}")
    return f"Kong {target.version} {target.edition} ({', '.join(details)})"
