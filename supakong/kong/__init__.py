"""Offline validation of Kong declarative config for self-hosted Supabase.

Public API:
    KongTarget, SUPABASE_PLUGINS           which Kong the config is for (target.py)
    Finding, findings_to_json, has_errors  what is reported (findings.py)
    validate_kong_config, validate_kong_document
"""

from .findings import Finding, findings_to_json, has_errors
from .target import SUPABASE_PLUGINS, KongTarget
from .validate import validate_kong_config, validate_kong_document

__all__ = [
    "SUPABASE_PLUGINS",
    "Finding",
    "KongTarget",
    "findings_to_json",
    "has_errors",
    "validate_kong_config",
    "validate_kong_document",
]
