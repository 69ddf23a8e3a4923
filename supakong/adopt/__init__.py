"""Adopting a server supakong did not build: ``supakong init``.

Entry points: :func:`init_host` (the task's body) and :class:`InitRequest` (its flags). The
parts: :mod:`.survey` (the read-only look over SSH), :mod:`.hostvars` (what goes into the
inventory), :mod:`.importer` (the live file as a template), :mod:`.remedies` (``--fix``),
:mod:`.localfiles` (idempotent writes that keep the user's comments).
"""

from .init import InitRequest, init_host

__all__ = ["InitRequest", "init_host"]
