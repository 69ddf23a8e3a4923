"""Offline validation of Kong declarative config for self-hosted Supabase.

Public API:
    KongTarget, SUPABASE_PLUGINS,          which Kong the config is for (target.py): version,
    SUPABASE_PLUGINS_3X, EXPANSIONS,       edition, plugins, the entrypoint's expansion
    ROUTER_FLAVORS                         (eval | awk | none) and KONG_ROUTER_FLAVOR
    Finding, findings_to_json, has_errors  what is reported (findings.py)
    validate_kong_config, validate_kong_document
"""

from .findings import Finding, findings_to_json, has_errors
from .target import EXPANSIONS, ROUTER_FLAVORS, SUPABASE_PLUGINS, SUPABASE_PLUGINS_3X, KongTarget
from .validate import validate_kong_config, validate_kong_document

__all__ = [
    "EXPANSIONS",
    "ROUTER_FLAVORS",
    "SUPABASE_PLUGINS",
    "SUPABASE_PLUGINS_3X",
    "Finding",
    "KongTarget",
    "findings_to_json",
    "has_errors",
    "validate_kong_config",
    "validate_kong_document",
]
