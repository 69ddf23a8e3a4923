"""The error tree of supakong.

Every expected failure is one of these; tasks turn them into a one-line message and a
non-zero exit code, never a traceback. Messages say where (file, host, key) and what to do.
"""

from __future__ import annotations


class DeployError(Exception):
    """Base of every expected supakong failure."""


class InventoryError(DeployError):
    """The inventory (hosts.yml, group_vars, host_vars, secrets file) is wrong."""


class RenderError(DeployError):
    """The template could not be rendered (syntax error, undefined variable)."""


class ValidationError(DeployError):
    """The Kong configuration would be refused by Kong or break Supabase."""


class TransportError(DeployError):
    """SSH, SFTP or the Docker API over SSH failed (host key, auth, network, command)."""


class RestartError(DeployError):
    """The Kong container did not come back up after a restart."""


class VerifyError(DeployError):
    """The Realtime verification through Kong failed."""


class FenceError(InventoryError):
    """``SUPAKONG_HOST_ALLOWLIST`` refuses a host or an address (or is set but empty)."""
