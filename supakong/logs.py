"""Kong and Realtime logs, interleaved by time, masked, with known failure patterns marked."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .container import parse_docker_time
from .engine import EngineClient
from .errors import TransportError
from .secrets import mask

#: Log patterns that explain a broken Realtime path, with what they mean (Kong's declarative
#: config errors, Realtime's log codes in supabase/realtime lib/realtime_web/channels/user_socket.ex).
KNOWN_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"error parsing declarative config|Failed parsing"), "Kong refused the declarative config"),
    (re.compile(r"TenantNotFound|Tenant not found"), "Realtime tenant mismatch (Host header / preserve_host)"),
    (re.compile(r"JwtSignatureError|signature_error|Failed to validate JWT"), "JWT secret mismatch"),
    (re.compile(r"InvalidJWTToken|Token has expired|MalformedJWT"), "invalid or expired JWT"),
    (re.compile(r"connect\(\) failed|upstream timed out|no live upstreams"), "Kong cannot reach an upstream"),
    (re.compile(r"name resolution failed|could not be resolved"), "Kong cannot resolve an upstream host"),
)


@dataclass(frozen=True)
class LogLine:
    """One log line of one container."""

    container: str
    time: float
    text: str

    @property
    def hint(self) -> str | None:
        """What a known failure pattern in this line means, if any."""
        return next((why for pattern, why in KNOWN_PATTERNS if pattern.search(self.text)), None)


def parse_log_lines(container: str, raw: bytes) -> list[LogLine]:
    """Parse ``docker logs --timestamps`` output into masked :class:`LogLine` values."""
    lines = []
    for row in raw.decode("utf-8", "replace").splitlines():
        stamp, _, text = row.partition(" ")
        try:
            when = parse_docker_time(stamp)
        except ValueError:
            when, text = 0.0, row
        lines.append(LogLine(container, when, mask(text.rstrip())))
    return lines


def fetch_logs(api: Any, container: str, *, since: float | None = None, tail: int | str = 200) -> list[LogLine]:
    """The container's stdout+stderr since ``since`` (engine epoch seconds), last ``tail`` lines,
    through the light :class:`EngineClient` or docker-py."""
    if isinstance(api, EngineClient):
        try:
            raw = api.logs(container, since=since, tail=tail)
        except TransportError as exc:
            return [LogLine(container, 0.0, f"(cannot read logs: {exc})")]
        if raw is None:
            return [LogLine(container, 0.0, f"(container {container} does not exist)")]
        return [line for line in parse_log_lines(container, raw) if not since or line.time >= since]
    import docker.errors  # lazy: keeps `fab` start-up fast

    kwargs: dict[str, Any] = {"stdout": True, "stderr": True, "timestamps": True, "tail": tail}
    if since:
        kwargs["since"] = int(since)
    try:
        raw = api.logs(container, **kwargs)
    except docker.errors.NotFound:
        return [LogLine(container, 0.0, f"(container {container} does not exist)")]
    except docker.errors.APIError as exc:
        return [LogLine(container, 0.0, f"(cannot read logs: {exc.explanation or exc})")]
    return [line for line in parse_log_lines(container, raw) if not since or line.time >= since]


def fetch_interleaved(
    api: Any, containers: Sequence[str], *, since: float | None = None, tail: int | str = 200
) -> list[LogLine]:
    """:func:`fetch_logs` of each container, merged by time; read at the same time through
    the :class:`EngineClient` (thread-safe), one after the other through docker-py."""
    if isinstance(api, EngineClient) and len(containers) > 1:
        with ThreadPoolExecutor(max_workers=len(containers), thread_name_prefix="supakong-logs") as pool:
            streams = list(pool.map(lambda name: fetch_logs(api, name, since=since, tail=tail), containers))
    else:
        streams = [fetch_logs(api, name, since=since, tail=tail) for name in containers]
    return interleave(*streams)


def interleave(*streams: Iterable[LogLine]) -> list[LogLine]:
    """Merge several containers' lines by time (stable for equal times)."""
    return sorted((line for stream in streams for line in stream), key=lambda line: line.time)


def format_log_lines(lines: Sequence[LogLine], *, width: int = 0) -> list[str]:
    """``[container] text`` lines, with a ``!`` marker and the meaning on known failures."""
    width = width or max((len(line.container) for line in lines), default=0)
    out = []
    for line in lines:
        hint = line.hint
        marker = "!" if hint else " "
        suffix = f"   <- {hint}" if hint else ""
        out.append(f"{marker} [{line.container:<{width}}] {line.text}{suffix}")
    return out


def grep(lines: Iterable[LogLine], pattern: str | None) -> list[LogLine]:
    """Only the lines matching ``pattern`` (a regular expression), or all of them."""
    if not pattern:
        return list(lines)
    regex = re.compile(pattern)
    return [line for line in lines if regex.search(line.text)]
