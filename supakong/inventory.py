"""The inventory: Ansible's YAML shape (``all`` → ``children`` → ``hosts``, ``vars``) plus
``group_vars/`` and ``host_vars/`` beside it.

Variables merge in Ansible's precedence order (lowest first): supakong's packaged defaults
(``supakong/defaults.yml``), the groups' inline ``vars``
(outermost to innermost), ``group_vars/all.yml`` and the other ``group_vars/<group>.yml``
files (same order), the host's own inline vars, and finally ``host_vars/<host>.yml``. The
result for one host is a :class:`HostConfig` (the typed fields supakong's code needs) plus
the full variable map the template sees.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InventoryError
from .fence import ALLOWLIST_ENV as ALLOWLIST_ENV  # the fence's variable, where it always was
from .fence import check_host
from .packaged import DEFAULT_TEMPLATE, default_vars, resolve_template

DEFAULT_INVENTORY = Path("inventory/hosts.yml")
#: ``kong_secrets``: keys as ``$NAME`` references the Kong entrypoint expands (the default),
#: or their values written into the file.
REFERENCE, INLINE = "reference", "inline"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_CONTAINER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
#: Absolute, no shell metacharacters, and no component starting with "-" (it would be an option
#: to the grep/ls/sha256sum that remote commands run on its name).
_SAFE_PATH = re.compile(r"(/[A-Za-z0-9._+][A-Za-z0-9._+-]*)+")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?")
_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


@dataclass(frozen=True)
class HostConfig:
    """Everything supakong needs to know about one host, validated."""

    name: str
    ssh_host: str
    ssh_port: int | None
    ssh_user: str | None
    ssh_config_file: Path | None
    identity_file: Path | None
    public_url: str
    kong_container: str
    realtime_container: str
    kong_config_path: str
    kong_config_mount: str
    docker_socket: str
    realtime_upstream_host: str
    realtime_upstream_port: int
    realtime_tenant: str | None
    kong_version: str | None
    kong_edition: str | None
    kong_plugins: str | None
    secrets_env_file: Path | None
    kong_secrets: str
    template: Path
    template_searched: tuple[Path, ...]
    file_mode: int
    backups_keep: int
    verify_channel: str
    verify_table: str
    verify_vsn: str
    groups: tuple[str, ...]
    vars: Mapping[str, Any] = field(repr=False, compare=False)
    #: ``ansible_become``: commands and Docker through ``sudo -n -u become_user`` (supakong.become)
    become: bool = False
    become_user: str = "root"
    db_container: str | None = None  # the Supabase db container; found by image/labels when unset
    #: Dokploy's panel (``http(s)://host[:port]``, its REST API under ``/api``) and the name of
    #: the environment variable holding an API key (supakong.dokploy): deploy through Dokploy.
    dokploy_url: str | None = None
    dokploy_api_key_env: str | None = None


def file_mode_warning(host: HostConfig) -> str:
    """A warning when the config file will be readable by every user of the host while it
    holds the keys in clear (``kong_secrets: inline``); '' otherwise."""
    if host.kong_secrets == INLINE and host.file_mode & 0o004:
        return (
            f"hosts/{host.name}/kong_config_mode: {host.file_mode:04o} makes {host.kong_config_path} readable by every"
            " user of the host, and with kong_secrets: inline it holds the service_role key in clear: use 0640"
        )
    return ""


@dataclass(frozen=True)
class Inventory:
    """A loaded inventory: the hosts by name, and the groups each belongs to."""

    path: Path
    hosts: Mapping[str, HostConfig]
    groups: Mapping[str, tuple[str, ...]]

    def host(self, name: str) -> HostConfig:
        """Return one host, or raise an error that lists the known hosts."""
        try:
            return self.hosts[name]
        except KeyError:
            known = ", ".join(sorted(self.hosts)) or "none"
            raise InventoryError(f"{self.path}: unknown host {name!r} (known hosts: {known})") from None

    def select(self, names: Iterable[str] = (), group: str | None = None) -> list[HostConfig]:
        """Hosts named in ``names`` (``-H``), else the members of ``group``, else every host."""
        wanted = [n for n in names if n]
        if wanted:
            return [self.host(n) for n in wanted]
        if group is not None:
            if group not in self.groups:
                known = ", ".join(sorted(self.groups))
                raise InventoryError(f"{self.path}: unknown group {group!r} (known groups: {known})")
            return [self.hosts[n] for n in self.groups[group]]
        return list(self.hosts.values())


def bootstrap_host(
    name: str, ssh_host: str, user: str | None, port: int | None, ssh_config_file: Path | None
) -> HostConfig:
    """A host that is not in an inventory yet, good for connecting only (``supakong init``
    reads the rest from it): its connection variables validated as an inventory's are."""
    values: dict[str, Any] = {
        "ansible_host": ssh_host,
        "public_url": f"http://{ssh_host}",
        "kong_container": "unknown",
        "realtime_container": "unknown",
        "kong_config_path": "/unknown",
    }
    if user:
        values["ansible_user"] = user
    if port:
        values["ansible_port"] = port
    if ssh_config_file is not None:
        values["ssh_config_file"] = str(ssh_config_file.absolute())
    return _host_config(Path("--ssh"), name, ("all",), values)


def check_allowed(host: HostConfig, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a host whose name the ``SUPAKONG_HOST_ALLOWLIST`` fence does not match (its
    addresses are checked where they are dialled: :mod:`supakong.fence`)."""
    check_host(host.name, environ)


#: libyaml's safe loader (about 10× faster on a large inventory) when PyYAML was built with it.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_inventory(path: Path = DEFAULT_INVENTORY) -> Inventory:
    """Load and validate the inventory at ``path`` (with its group_vars/ and host_vars/)."""
    path = Path(path)
    doc = _read_yaml(path)
    if not isinstance(doc, dict) or "all" not in doc:
        raise InventoryError(f"{path}: expected a mapping with a top-level 'all' group")
    chains: dict[str, list[str]] = {}
    inline: dict[str, dict[str, Any]] = {}
    group_vars: dict[str, dict[str, Any]] = {}
    members: dict[str, list[str]] = {}
    _walk_group(path, "all", doc["all"], [], chains, inline, group_vars, members)
    base = path.parent
    hosts = {}
    group_files: dict[str, dict[str, Any]] = {}  # group_vars/NAME.yml, read once per group
    for name, chain in chains.items():
        merged: dict[str, Any] = dict(default_vars())
        for group in chain:
            merged.update(group_vars.get(group, {}))
        for group in chain:
            if group not in group_files:
                group_files[group] = _vars_file(base / "group_vars", group)
            merged.update(group_files[group])
        merged.update(inline[name])
        merged.update(_vars_file(base / "host_vars", name))
        hosts[name] = _host_config(path, name, tuple(chain), merged)
    groups = {g: tuple(m) for g, m in members.items()}
    return Inventory(path=path, hosts=hosts, groups=groups)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read inventory ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader, libyaml's when present
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InventoryError(f"{path}{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise InventoryError(f"{path}: invalid YAML: nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date such as 2024-02-30
        raise InventoryError(f"{path}: invalid YAML value: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None


def _vars_file(directory: Path, name: str) -> dict[str, Any]:
    for suffix in (".yml", ".yaml"):
        candidate = directory / f"{name}{suffix}"
        if candidate.is_file():
            data = _read_yaml(candidate) or {}
            if not isinstance(data, dict):
                raise InventoryError(f"{candidate}: expected a mapping of variables")
            return data
    return {}


def _walk_group(
    path: Path,
    group: str,
    body: Any,
    parents: list[str],
    chains: dict[str, list[str]],
    inline: dict[str, dict[str, Any]],
    group_vars: dict[str, dict[str, Any]],
    members: dict[str, list[str]],
) -> None:
    """Collect hosts, their group chain (outermost first) and vars, recursively."""
    where = "/".join([*parents, group])
    body = body or {}
    if not isinstance(body, dict):
        raise InventoryError(f"{path}: {where}: expected a mapping with hosts/vars/children")
    unknown = set(body) - {"hosts", "vars", "children"}
    if unknown:
        raise InventoryError(f"{path}: {where}: unknown key {sorted(map(str, unknown))[0]!r}")
    for key in ("hosts", "vars", "children"):
        if not isinstance(body.get(key) or {}, dict):
            raise InventoryError(f"{path}: {where}/{key}: expected a mapping, got {type(body[key]).__name__}")
    chain = [*parents, group]
    group_vars[group] = dict(body.get("vars") or {})
    members.setdefault(group, [])
    for name, host_vars in (body.get("hosts") or {}).items():
        name = str(name)
        if not _NAME.fullmatch(name):
            raise InventoryError(f"{path}: {where}/hosts/{name!r}: invalid host name")
        if host_vars is not None and not isinstance(host_vars, dict):
            raise InventoryError(f"{path}: {where}/hosts/{name}: expected a mapping of variables")
        chains.setdefault(name, chain)
        inline.setdefault(name, {}).update(host_vars or {})
        for g in chain:
            if name not in members.setdefault(g, []):
                members[g].append(name)
    for child, child_body in (body.get("children") or {}).items():
        child = str(child)
        if not _NAME.fullmatch(child):
            raise InventoryError(f"{path}: {where}/children/{child!r}: invalid group name")
        if child in chain:
            raise InventoryError(f"{path}: {where}/children/{child}: group {child!r} contains itself")
        _walk_group(path, child, child_body, chain, chains, inline, group_vars, members)


class _Fields:
    """Typed access to one host's merged vars; every error names ``hosts/<host>/<key>``."""

    def __init__(self, path: Path, host: str, values: Mapping[str, Any]) -> None:
        self.path, self.host, self.values = path, host, values

    def fail(self, key: str, problem: str) -> InventoryError:
        return InventoryError(f"{self.path}: hosts/{self.host}/{key}: {problem}")

    def text(self, key: str, default: str | None = None, pattern: re.Pattern[str] | None = None) -> str:
        value = self.values.get(key, default)
        if value is None:
            raise self.fail(key, "is required")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise self.fail(key, f"expected a string, got {type(value).__name__}")
        value = str(value)
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(key, f"invalid value {value!r}")
        return value

    def optional(self, key: str, pattern: re.Pattern[str] | None = None) -> str | None:
        return None if self.values.get(key) in (None, "") else self.text(key, pattern=pattern)

    def integer(self, key: str, default: int | None, low: int, high: int) -> int | None:
        value = self.values.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.fail(key, f"expected an integer, got {value!r}")
        try:
            number = int(str(value), 0)
        except ValueError:
            raise self.fail(key, f"expected an integer, got {value!r}") from None
        if not low <= number <= high:
            raise self.fail(key, f"{number} is out of range {low}..{high}")
        return number

    def boolean(self, key: str, default: bool) -> bool:
        """Ansible's booleans: true/false, yes/no, on/off, 1/0 (any case)."""
        value = self.values.get(key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)) and str(value).lower() in _BOOLEANS:
            return _BOOLEANS[str(value).lower()]
        raise self.fail(key, f"expected true or false, got {value!r}")

    @property
    def project_dir(self) -> Path:
        """The directory holding the inventory's directory: relative paths start there."""
        return self.path.absolute().parent.parent

    def local_path(self, key: str, default: str | None = None) -> Path | None:
        value = self.optional(key) if default is None else self.text(key, default)
        if value is None:
            return None
        if "\0" in value:
            raise self.fail(key, "contains a NUL byte")
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else (self.project_dir / path)

    def template(self, key: str, default: str) -> tuple[Path, tuple[Path, ...]]:
        """A template: in the project directory, else among the templates supakong ships."""
        value = self.text(key, default)
        if "\0" in value:
            raise self.fail(key, "contains a NUL byte")
        return resolve_template(os.path.expanduser(value), self.project_dir)


def _host_config(path: Path, name: str, chain: tuple[str, ...], values: dict[str, Any]) -> HostConfig:
    f = _Fields(path, name, values)
    public_url = f.text("public_url")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", public_url):
        raise f.fail("public_url", f"expected http(s)://host[:port], got {public_url!r}")
    mode = f.text("kong_config_mode", "0640", re.compile(r"0?[0-7]{3}"))
    if int(mode, 8) & 0o133:
        raise f.fail(
            "kong_config_mode",
            f"{mode} lets others than the owner write the file or makes it executable; Kong only"
            " reads it: use 0640 (0644 at most)",
        )
    template, searched = f.template("kong_template", DEFAULT_TEMPLATE)
    return HostConfig(
        name=name,
        ssh_host=f.text("ansible_host", name, _HOSTNAME),
        ssh_port=f.integer("ansible_port", None, 1, 65535),
        ssh_user=f.optional("ansible_user", _NAME),
        ssh_config_file=f.local_path("ssh_config_file"),
        identity_file=f.local_path("ansible_ssh_private_key_file"),
        public_url=public_url.rstrip("/"),
        kong_container=f.text("kong_container", pattern=_CONTAINER),
        realtime_container=f.text("realtime_container", pattern=_CONTAINER),
        kong_config_path=f.text("kong_config_path", pattern=_SAFE_PATH),
        kong_config_mount=f.text("kong_config_mount", "/home/kong/temp.yml", _SAFE_PATH),
        docker_socket=f.text("docker_socket", "/var/run/docker.sock", _SAFE_PATH),
        realtime_upstream_host=f.text("realtime_upstream_host", "realtime-dev.supabase-realtime", _HOSTNAME),
        realtime_upstream_port=f.integer("realtime_upstream_port", 4000, 1, 65535) or 4000,
        realtime_tenant=f.optional("realtime_tenant", _NAME),
        kong_version=f.optional("kong_version", re.compile(r"\d+\.\d+(\.\d+)*")),
        kong_edition=f.optional("kong_edition", re.compile(r"oss|enterprise")),
        kong_plugins=f.optional("kong_plugins", re.compile(r"[a-z0-9_,-]+")),
        secrets_env_file=f.local_path("secrets_env_file"),
        kong_secrets=f.text("kong_secrets", REFERENCE, re.compile(f"{REFERENCE}|{INLINE}")),
        template=template,
        template_searched=searched,
        file_mode=int(mode, 8),
        backups_keep=f.integer("backups_keep", 5, 1, 1000) or 5,
        verify_channel=f.text("verify_channel", "supakong-probe", _NAME),
        verify_table=f.text("verify_table", "public.wells", re.compile(r"([A-Za-z0-9_]+\.[A-Za-z0-9_]+)?")),
        verify_vsn=f.text("verify_vsn", "2.0.0", re.compile(r"1\.0\.0|2\.0\.0")),
        groups=chain,
        vars=dict(values),
        db_container=f.optional("db_container", _CONTAINER),
        **_dokploy_fields(f),
        **_become_fields(f),
    )


def _dokploy_fields(f: _Fields) -> dict[str, Any]:
    """``dokploy_url`` (the panel, no path) and ``dokploy_api_key_env`` (a variable's name,
    never the key itself)."""
    url = f.optional("dokploy_url")
    if url is not None and not re.fullmatch(r"https?://[^\s/?#]+/?", url):
        raise f.fail(
            "dokploy_url", f"expected http(s)://host[:port] (Dokploy's panel, the API is under /api), got {url!r}"
        )
    key_env = f.optional("dokploy_api_key_env", re.compile(r"[A-Za-z_][A-Za-z0-9_]*"))
    return {"dokploy_url": url.rstrip("/") if url else None, "dokploy_api_key_env": key_env}


def _become_fields(f: _Fields) -> dict[str, Any]:
    """``ansible_become``, ``ansible_become_user`` (default root); the method must be sudo and
    the flags harmless, since supakong always runs ``sudo -n -u USER --`` (supakong.become)."""
    from .become import METHOD, check_flags

    method = f.text("ansible_become_method", METHOD)
    if method != METHOD:
        raise f.fail(
            "ansible_become_method", f"{method!r} is not supported: supakong becomes another user with sudo only"
        )
    flag = check_flags(f.text("ansible_become_flags", ""))
    if flag is not None:
        raise f.fail("ansible_become_flags", f"{flag!r} is not supported: supakong always runs `sudo -n -u USER --`")
    return {"become": f.boolean("ansible_become", False), "become_user": f.text("ansible_become_user", "root", _NAME)}
