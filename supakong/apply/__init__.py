"""How a new Kong config reaches the running gateway: a strategy chosen once per host.

- :mod:`.choice` (pure): reload through the Admin API, or restart, and why;
- :mod:`.reload_script` (pure): the one ``docker exec`` that renders the candidate as the
  container's entrypoint would, parses it, posts it to ``/config`` with the image's own
  ``resty`` and confirms ``configuration_hash``; and what its answer means;
- :mod:`.reload`: runs it on a host.

``deploy`` calls :func:`choose_apply` and, for a reload, :func:`reload_config`; a reload
that cannot run falls back to the restart, one Kong refuses changes nothing.
"""

from .choice import RELOADED, RESTARTED, ApplyChoice, admin_url, choose_apply
from .reload import reload_config
from .reload_script import APPLIED, FALLBACK, REFUSED, ReloadOutcome

__all__ = [
    "APPLIED",
    "FALLBACK",
    "REFUSED",
    "RELOADED",
    "RESTARTED",
    "ApplyChoice",
    "ReloadOutcome",
    "admin_url",
    "choose_apply",
    "reload_config",
]
