"""Run the reload on a host: one ``docker exec`` into the running Kong (see :mod:`.reload_script`)."""

from __future__ import annotations

import time

from ..container import exec_in_container
from ..engine import EngineClient
from ..errors import TransportError
from ..hostprofile import DEFAULT_TEMPLATE_MOUNT, HostProfile
from ..secrets import mask
from .choice import ApplyChoice
from .reload_script import FALLBACK, WORKDIR, ReloadOutcome, judge_reload, reload_argv


def reload_config(
    engine: EngineClient,
    container: str,
    profile: HostProfile,
    choice: ApplyChoice,
    template: bytes,
    *,
    parse: bool = True,
) -> ReloadOutcome:
    """Render ``template`` in ``container`` as its entrypoint would, post it to the Admin API
    and confirm it; the outcome says applied, refused (nothing changed) or fall back.
    ``parse=False`` skips ``kong config parse`` (the preflight parsed this very candidate)."""
    argv = reload_argv(
        f"{WORKDIR}-{time.time_ns()}",
        profile.expansion,
        profile.entrypoint_script or "",
        profile.template_mount or DEFAULT_TEMPLATE_MOUNT,
        choice.admin_url,
        choice.settle,
        parse,
    )
    try:
        code, output = exec_in_container(engine, container, argv, stdin=template)
    except TransportError as exc:
        return ReloadOutcome(FALLBACK, f"cannot exec into {container}: {mask(str(exc))[:200]}")
    return judge_reload(code, mask(output))
