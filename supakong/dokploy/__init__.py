"""Dokploy-managed stacks: see them (:mod:`.detect`), talk to Dokploy's API (:mod:`.api`),
and change Kong's file the way Dokploy expects (:mod:`.apply`)."""

from .detect import CODE, COMPOSE, FILES, STACK, DokployStack, detect

__all__ = ["CODE", "COMPOSE", "FILES", "STACK", "DokployStack", "detect"]
