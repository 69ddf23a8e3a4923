"""What ``doctor`` looked at on one host (:class:`DoctorFacts`), read by the checks
(:mod:`supakong.doctor_checks`) and filled in by the gathering (:mod:`supakong.doctor`).
Secret-bearing fields never print."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from .container import ContainerState
from .discovery import ContainerSummary
from .doctor_hash import RunningConfig
from .doctor_tables import TableReadiness
from .eval_expansion import expand_like_eval
from .inventory import HostConfig
from .kong.entities import Entities, collect_entities
from .kong.target import KongTarget
from .kong.yaml_source import parse_source
from .remote_file import RemoteFile
from .verify_run import HostVerification

DEFAULT_TENANT = "realtime-dev"
#: The inventory's keys and the kong.yml consumers that must hold them (Supabase's names).
KEY_CONSUMERS = (("anon", "SUPABASE_ANON_KEY"), ("service_role", "SUPABASE_SERVICE_KEY"))


@dataclass(frozen=True)
class DoctorFacts:
    """Everything the doctor looked at on one host. Secret-bearing fields never print."""

    host: str
    public_url: str
    config_path: str
    config_mount: str
    kong_container: str
    realtime_container: str
    realtime_upstream: str = "realtime-dev.supabase-realtime:4000"  # host:port of the inventory
    inventory_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    local_publishable: str = field(default="", repr=False)  # SUPABASE_PUBLISHABLE_KEY of the secrets
    inventory_tenant: str | None = None
    ssh_error: str = ""
    file: RemoteFile | None = None
    kong: ContainerState | None = None
    realtime: ContainerState | None = None
    live_text: str | None = field(default=None, repr=False)
    effective_text: str | None = field(default=None, repr=False)
    effective_source: str = ""
    effective_note: str = ""
    mount_sha256: str | None = None
    #: the reload marker names this file and this Kong (see :attr:`HostState.file_is_loaded`)
    reloaded: bool = False
    target: KongTarget | None = None
    target_error: str = ""
    verification: HostVerification | None = None
    verification_note: str = ""
    now: float = 0.0
    tables: TableReadiness | None = None  # the db's readiness for postgres_changes
    envoy: ContainerSummary | None = None  # an Envoy gateway, looked for when Kong is missing
    running_config: RunningConfig | None = None  # Kong's configuration_hash against the file's
    host_config: HostConfig | None = field(default=None, repr=False, compare=False)
    dokploy_drift: str | None = None  # Dokploy's stored copy is not the host's file (read through its API)

    @property
    def config_text(self) -> str | None:
        """The config Kong loaded (``KONG_DECLARATIVE_CONFIG`` in the container), else the
        file on the host."""
        return self.effective_text if self.effective_text is not None else self.live_text

    @property
    def config_label(self) -> str:
        return self.effective_source if self.effective_text is not None else f"{self.config_path} on the host"

    @property
    def keys_text(self) -> str | None:
        """The config with the entrypoint's ``$VARS`` substituted from Kong's env when only
        the host file could be read."""
        if self.effective_text is not None or self.live_text is None:
            return self.effective_text
        return expand_placeholders(self.live_text, self.kong.env if self.kong else {})

    @property
    def tenant(self) -> tuple[str, str]:
        """Realtime's tenant and where it comes from."""
        if self.realtime is not None and self.realtime.exists:
            name = self.realtime.env.get("SELF_HOST_TENANT_NAME")
            if name:
                return name, f"SELF_HOST_TENANT_NAME of {self.realtime_container}"
            return DEFAULT_TENANT, f"the default: SELF_HOST_TENANT_NAME is not set on {self.realtime_container}"
        if self.inventory_tenant:
            return self.inventory_tenant, "realtime_tenant in the inventory"
        return DEFAULT_TENANT, "the default"


def expand_placeholders(text: str, env: Mapping[str, str]) -> str | None:
    """The file Supabase's eval entrypoint makes of ``text`` with Kong's ``env`` (``$VARS``
    substituted, unset: empty), or None where only its shell could tell (see
    :mod:`supakong.eval_expansion`)."""
    return expand_like_eval(text, env)


def config_entities(text: str | None) -> Entities | None:
    """The Kong entities of a config's text (None: no text, or not a parseable mapping)."""
    if text is None:
        return None
    parsed = parse_source(text)
    return collect_entities(parsed.doc) if not parsed.failed and isinstance(parsed.doc, Mapping) else None


def text_sha256(value: str) -> str:
    """The sha256 hex digest of ``value`` as UTF-8 (keys are compared by it, never shown)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
