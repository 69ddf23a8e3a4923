"""Rendering the Kong declarative config from the inventory (Jinja2, StrictUndefined)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2

from .errors import RenderError
from .inventory import HostConfig
from .secrets import Secrets, mask


def yaml_single_quoted(value: object) -> str:
    """Quote ``value`` as a single-quoted YAML scalar.

    Single quotes survive Supabase's entrypoint, which expands the file with a shell
    ``eval`` inside double quotes (double quotes would vanish; facts §7).
    """
    return "'" + str(value).replace("'", "''") + "'"


def template_context(host: HostConfig, secrets: Secrets) -> dict[str, Any]:
    """The variables a template sees: every inventory var, the host name and the secrets."""
    context = dict(host.vars)
    context.update(
        inventory_hostname=host.name,
        realtime_upstream_host=host.realtime_upstream_host,
        realtime_upstream_port=host.realtime_upstream_port,
        secrets=dict(secrets.values),
    )
    return context


def render_kong_config(host: HostConfig, secrets: Secrets, template: Path | None = None) -> str:
    """Render the host's Kong template; errors name the template file and line."""
    path = template or host.template
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["yaml_str"] = yaml_single_quoted
    try:
        return env.get_template(path.name).render(template_context(host, secrets))
    except jinja2.TemplateNotFound:
        raise RenderError(f"{path}: template not found (kong_template for host {host.name})") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"{path}:{exc.lineno}: template syntax error: {mask(exc.message or '')}") from None
    except jinja2.UndefinedError as exc:
        line = _template_line(exc.__traceback__, path)
        raise RenderError(
            f"{path}:{line}: {mask(exc.message or 'undefined variable')}"
            f" (define it in the inventory for host {host.name})"
        ) from None


def sha256_text(text: str) -> str:
    """The sha256 hex digest of ``text`` encoded as UTF-8 (what lands on the host)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _template_line(tb: TracebackType | None, path: Path) -> str:
    """The template line an exception came from (Jinja2 rewrites frames to template lines)."""
    line = "?"
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).name == path.name:
            line = str(tb.tb_lineno)
        tb = tb.tb_next
    return line
