"""``supakong init NAME --ssh HOST``: adopt a server supakong did not build.

Look (read-only, over SSH: :mod:`.survey`), then write three files on this machine, each
only if it changes (:mod:`.localfiles`):

- ``DIR/inventory/hosts.yml``: the host, with its connection variables;
- ``DIR/inventory/host_vars/NAME.yml``: what was found, each value with its source;
- ``DIR/templates/NAME/kong.yml.j2``: the live kong file as the host's template, byte for
  byte except keys as ``$NAME`` references (:mod:`supakong.envrefs`) and Jinja escaped
  (:mod:`.importer`); with ``--fix``, the known remedies applied (:mod:`.remedies`).

Then it renders what ``deploy-kong`` would write and prints the masked diff with the live
file, so that ``cd DIR && supakong deploy-kong -H NAME`` is the next step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..dokploy.policy import dokploy_notes
from ..envrefs import Imported, check_references, references_for_secrets
from ..errors import InventoryError
from ..hostprofile import kong_target
from ..inventory import HostConfig, bootstrap_host, check_allowed, load_inventory
from ..kong.entities import Upstream, collect_entities, effective_upstream, parent_of
from ..kong.pitfalls import realtime_routes
from ..kong.yaml_source import parse_source
from ..plan import unified_diff
from ..render import render_kong_config
from ..report import HostResult, Output
from ..secrets import load_host_secrets
from ..transport import SESSION_CHANNEL, HostConnection
from .hostvars import DISCOVERED, SshTarget, connection_vars, discovered_entries, inventory_entries
from .importer import as_template
from .localfiles import UNCHANGED, add_host, update_vars, write_if_changed
from .remedies import FixContext, Fixed, apply_remedies
from .survey import Survey, choose_public_url, take_survey


@dataclass(frozen=True)
class InitRequest:
    """The task's flags."""

    name: str
    ssh: str
    directory: Path = Path(".")
    ssh_config: Path | None = None
    fix: bool = False
    project: str | None = None
    accept_new: bool = False


def init_host(request: InitRequest, out: Output) -> HostResult:
    """Survey the host, write the local files, print what a deploy would change."""
    started = time.monotonic()
    name = request.name
    result = HostResult(host=name)
    ssh = _target(request)
    host = bootstrap_host(name, ssh.host, ssh.user, ssh.port, request.ssh_config)
    check_allowed(host)  # SUPAKONG_HOST_ALLOWLIST fences init too
    with HostConnection(host, accept_new=request.accept_new, early=(SESSION_CHANNEL,)) as conn:
        with result.timed("survey"):
            survey = take_survey(conn, request.project)
    _print_survey(survey, out, name)
    imported = _import(survey, request.fix, out, name)
    root = request.directory
    template_rel = f"templates/{name}/kong.yml.j2"
    statuses = _write_files(request, survey, imported, ssh, template_rel, out)
    inventory = load_inventory(root / "inventory" / "hosts.yml")
    adopted = inventory.host(name)
    desired = _desired(adopted, survey, out)
    diff = unified_diff(survey.live_text, desired, survey.live_path)
    out.line(f"  what `supakong deploy-kong -H {name}` would change in {survey.live_path}:", name)
    out.line(diff.rstrip("\n") if diff else "    nothing: the template renders the live file as it is", name)
    where = "" if root == Path(".") else f"cd {root} && "
    out.line(f"  next: {where}supakong doctor -H {name}; supakong deploy-kong -H {name} --check", name)
    result.status = "ok" if all(status == UNCHANGED for status in statuses) else "changed"
    result.plan = "deploy-kong would change the file" if diff else "deploy-kong would change nothing"
    result.message = ", ".join(statuses)
    result.seconds = time.monotonic() - started
    return result


def _target(request: InitRequest) -> SshTarget:
    try:
        return SshTarget.parse(request.ssh)
    except ValueError as exc:
        raise InventoryError(str(exc)) from None


def _print_survey(s: Survey, out: Output, name: str) -> None:
    p = s.profile
    realtime = f"{s.realtime.name} (tenant {p.realtime_tenant}: {p.tenant_source})" if s.realtime else "none found"
    lines = [
        f"  kong:     {s.kong.name} ({p.kong_image}, Kong {p.kong_version or '?'} {p.kong_edition},"
        f" router {p.router_flavor}, entrypoint {p.expansion})",
        f"  file:     {p.template_source} → {p.template_mount} (Kong loads {p.declarative_config})",
        f"  realtime: {realtime}",
        f"  db:       {p.db_container or 'none found'}",
        f"  keys:     {', '.join(sorted(p.secret_env)) or 'none'} in Kong's environment (names only)",
        f"  owner:    {p.owner.kind}"
        + (f", compose project {p.owner.project} in {p.owner.working_dir}" if p.owner.project else ""),
    ]
    if p.owner.markers or p.dokploy:
        lines += [f"  Dokploy:  {note}" for note in dokploy_notes(p.dokploy, p.owner.markers, None)]
        if p.dokploy is not None and p.dokploy.location == "files":
            lines.append(
                "            deploy-kong writes it through Dokploy's API once the inventory has dokploy_url and"
                " dokploy_api_key_env (else only with --direct)"
            )
    out.lines(lines, name)


def _import(survey: Survey, fix: bool, out: Output, name: str) -> Imported:
    """The live file with its keys as references (where Kong expands them), fixed if asked."""
    profile = survey.profile
    # A Kong that expands nothing must get the values: then they stay (kong_secrets: inline).
    imported = references_for_secrets(survey.live_text, survey.kong.env if profile.expands_references else {})
    if imported.replaced:
        out.line(f"  secrets:  {', '.join(imported.replaced)} written as $NAME references instead of values", name)
    for where in imported.left_in_clear:
        why = (
            f"no variable of {survey.kong.name} holds: add it to its environment and run init again"
            if profile.expands_references
            else f"{survey.kong.name} loads the file as is, so it stays"
        )
        out.line(f"  ! {survey.live_path}: {where} holds a key {why}; the template keeps it in clear (mode 0600)", name)
    if not fix:
        return imported
    realtime = survey.realtime
    names = (realtime.name, *realtime.aliases) if realtime is not None else ()
    fixed: Fixed = apply_remedies(
        imported.text, FixContext(profile.realtime_tenant, names, profile.kong_edition == "enterprise")
    )
    for remedy in fixed.remedies:
        out.line(f"  {remedy.as_line()}", name)
    if not fixed.remedies:
        out.line("  --fix: nothing to fix", name)
    return Imported(fixed.text, imported.replaced, imported.left_in_clear)


def _write_files(
    request: InitRequest, survey: Survey, imported: Imported, ssh: SshTarget, template_rel: str, out: Output
) -> list[str]:
    root, name = request.directory, request.name
    inventory_dir = root / "inventory"
    template = as_template(imported.text, survey.live_path)
    template_path = root / template_rel
    previous = template_path.read_text(encoding="utf-8") if template_path.is_file() else None
    if previous is not None and previous != template:
        write_if_changed(template_path.with_name(template_path.name + ".previous"), previous)
    written = [
        (
            inventory_dir / "hosts.yml",
            add_host(inventory_dir / "hosts.yml", name, connection_vars(name, ssh, _config_path(request))),
        ),
        (
            inventory_dir / "host_vars" / f"{name}.yml",
            update_vars(
                inventory_dir / "host_vars" / f"{name}.yml",
                f"{name}: found by `supakong init` on the host (read-only). Run it again to refresh\n"
                "these values; variables you add here yourself are kept.",
                inventory_entries(survey, choose_public_url(survey), _upstream(imported.text), template_rel),
                {DISCOVERED: discovered_entries(survey)},
            ),
        ),
        (template_path, write_if_changed(template_path, template, 0o600 if imported.left_in_clear else 0o644)),
    ]
    for path, status in written:
        note = f" (the previous one kept as {path.name}.previous)" if path == template_path and previous else ""
        out.line(f"  {status:<9} {path}{note if status != UNCHANGED else ''}", name)
    return [status for _, status in written]


def _config_path(request: InitRequest) -> str | None:
    """``--ssh-config`` as the inventory resolves it: relative to DIR when inside it."""
    if request.ssh_config is None:
        return None
    path = request.ssh_config.absolute()
    try:
        return str(path.relative_to(request.directory.absolute()))
    except ValueError:
        return str(path)


def _upstream(text: str) -> tuple[Upstream, str] | None:
    """The realtime route's upstream in ``text`` and its service's name."""
    parsed = parse_source(text)
    if parsed.failed or not isinstance(parsed.doc, dict):
        return None
    entities = collect_entities(parsed.doc)
    for route in realtime_routes(entities):
        service = parent_of(route, "services", entities)
        upstream = effective_upstream(service.data) if service is not None else None
        if service is not None and upstream is not None and upstream.host:
            return upstream, str(service.get("name") or service.path)
    return None


def _desired(host: HostConfig, survey: Survey, out: Output) -> str:
    """What deploy-kong would write: the host's template rendered for its Kong, checked
    against the references Kong can expand and validated for it (its errors printed)."""
    from ..kong.findings import has_errors
    from ..kong.validate import validate_kong_config

    profile = survey.profile
    text = render_kong_config(
        host,
        load_host_secrets(host),
        held=profile.env_names,
        expansion=profile.expansion,
        router_flavor=profile.router_flavor,
    )
    check_references(text, profile, source=str(host.template), host=host.name)
    target = kong_target(host, profile)
    findings = validate_kong_config(text, target, source=str(host.template))
    errors = [f for f in findings if f.severity == "error"]
    out.lines([f"  {f.as_line()}" for f in errors], host.name)
    verdict = f"REFUSED ({len(errors)} errors)" if has_errors(findings) else "valid"
    out.line(f"  the new file is {verdict} for {target.label} ({len(findings) - len(errors)} warnings)", host.name)
    return text
