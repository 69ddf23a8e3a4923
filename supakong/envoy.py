"""Envoy as the API gateway: what supakong says on such a host (and why it deploys nothing).

Since self-hosted Supabase 0.8.0 (2026-08) ``docker-compose.yml`` runs Envoy as service
``api-gw`` (container ``supabase-envoy``); Kong is the opt-in override
``docker-compose.kong.yml`` (supabase/supabase PR #48153, release PR #48899; CHANGELOG 0.8.0
"Changed the default API gateway from Kong to Envoy"). On an Envoy stack a kong.yml is not
read by anything, so deploying one would change nothing while reporting success: ``init``,
``doctor`` and ``deploy-kong`` say so and how to switch to Kong upstream's way instead.
"""

from __future__ import annotations

from typing import Any

from .discovery import ENVOY, ContainerSummary, role_of, summaries

SWITCH_TO_KONG = (
    "to use Kong (and supakong), run upstream's Kong override: put docker-compose.kong.yml and"
    " volumes/api/{kong.yml,kong-entrypoint.sh} from supabase/supabase's docker/ directory next to"
    " docker-compose.yml, then `docker compose -f docker-compose.yml -f docker-compose.kong.yml up -d`"
    " (upstream's `sh run.sh config add kong` does the same); it replaces api-gw by supabase-kong in place"
)


def envoy_detail(envoy: ContainerSummary) -> str:
    """One line: the gateway is Envoy, so kong.yml is not used on this host."""
    return (
        f"the API gateway is Envoy ({envoy.name}, {envoy.image}), Supabase's default since self-hosted 0.8.0:"
        " kong.yml is not used on this host, and supakong deploys nothing to it"
    )


def find_envoy(engine: Any) -> ContainerSummary | None:
    """The host's Envoy gateway container (image envoyproxy/envoy, or compose service envoy),
    a running one first; None when it has none."""
    found = [c for c in summaries(engine.list_containers()) if role_of(c) == ENVOY]
    return next((c for c in found if c.running), found[0] if found else None)
