"""Scheduled redeploys: the systemd ``.service`` + ``.timer`` pair or a cron line that run
``supakong redeploy`` unattended.

Everything here is pure (strings in, strings out) except :func:`install_units`, which writes
the rendered units to a directory. The command line is built once (:func:`redeploy_command`)
and written both into ``ExecStart=`` (quoted for systemd) and into the cron line (quoted for
``sh``, ``%`` escaped for cron, behind ``flock -n`` so that runs never overlap).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import fence
from .errors import DeployError
from .packaged import templates_dir

TEMPLATES = templates_dir()
SERVICE_TEMPLATE = "supakong-redeploy.service.j2"
TIMER_TEMPLATE = "supakong-redeploy.timer.j2"
DEFAULT_UNIT = "supakong-redeploy"
SYSTEM_UNIT_DIR = Path("etc/systemd/system")
USER_UNIT_DIR = Path(".config/systemd/user")
#: A redeploy that takes longer than this is stuck (systemd kills it and marks it failed).
DEFAULT_TIMEOUT = 10 * 60
MIN_INTERVAL = 60

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL = re.compile(r"(?:(\d+)([smhd]))+")
_PART = re.compile(r"(\d+)([smhd])")
_UNIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,100}")
_SAFE_WORD = re.compile(r"[A-Za-z0-9_./:=,+@*-]+")


class ScheduleError(DeployError):
    """A schedule that cannot be written (bad interval, calendar or name)."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def refuse_control_characters(what: str, value: str) -> str:
    """``value`` for a unit field or a cron line, refused if it holds a control character
    (a newline would start another ``Key=`` line in a unit, another job in a crontab)."""
    if _CONTROL.search(value):
        raise ScheduleError(f"{what}: {value!r} holds a control character (a newline would add a line)")
    return value


# -- who runs it -------------------------------------------------------------------------
def service_user(
    *, user_mode: bool, euid: int, environ: Mapping[str, str], run_as: str | None, as_root: bool
) -> str | None:
    """The ``User=`` of the service (None: none written). A user unit runs as its user. A
    system unit installed as root runs as ``run_as``, else ``$SUDO_USER`` (who ran sudo);
    root only with ``as_root`` (then :func:`not_root_owned` must find nothing). Installed
    by another user: that user."""
    if user_mode:
        return None
    if euid != 0:
        return run_as or environ.get("USER") or None
    if as_root:
        if run_as not in (None, "root"):
            raise ScheduleError("give --run-as USER or --as-root, not both")
        return None
    chosen = run_as or environ.get("SUDO_USER") or ""
    if not chosen or chosen == "root":
        raise ScheduleError(
            "as root, schedule-redeploy writes a unit that runs as a non-root user: run it with sudo"
            " (User= is then $SUDO_USER), or pass --run-as USER; --as-root runs it as root, only"
            " if every file it runs (venv, inventory, template, ssh config) is root's alone"
        )
    if not re.fullmatch(r"[a-z_][a-z0-9_.-]{0,31}\$?", chosen):
        raise ScheduleError(f"--run-as: {chosen!r} is not a user name")
    return chosen


def not_root_owned(paths: Sequence[Path]) -> list[str]:
    """Of ``paths`` and every directory above them, those another user than root could change
    (owned by another user, or writable by group or others; a symlink is judged by its
    target and its own directory): what a root timer must not run or read. One line each."""
    found: dict[str, str] = {}
    for path in paths:
        for each in (path, *path.parents):
            key = str(each)
            if key in found:
                continue
            try:
                st = each.stat()
            except OSError:
                continue  # not there: nothing to run from it
            if st.st_uid != 0:
                found[key] = f"{each} is owned by uid {st.st_uid}"
            elif st.st_mode & 0o022 and not (each.is_dir() and st.st_mode & 0o1000):
                found[key] = f"{each} is writable by {'group' if st.st_mode & 0o020 else 'others'}"
            else:
                found[key] = ""
    return [why for why in found.values() if why]


def parse_duration(text: str, flag: str = "--every", minimum: int = 0) -> int:
    """Seconds in a duration like ``90s``, ``15m``, ``1h``, ``1h30m`` or ``1d`` (at least ``minimum``)."""
    compact = text.strip().lower().replace(" ", "")
    if not _INTERVAL.fullmatch(compact):
        raise ScheduleError(f"{flag}: expected a duration like 15m, 1h, 1h30m or 1d; got {text!r}")
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(compact))
    if seconds < minimum:
        raise ScheduleError(f"{flag}: {text!r} is shorter than {systemd_timespan(minimum)}")
    return seconds


def parse_interval(text: str) -> int:
    """The ``--every`` interval in seconds; at least a minute (more often is a loop, not a schedule)."""
    return parse_duration(text, "--every", MIN_INTERVAL)


def systemd_timespan(seconds: int) -> str:
    """A systemd time span (``15min``, ``1h30min``, ``1d``, ``45s``)."""
    if seconds <= 0:
        return "0"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def default_jitter(every: int | None) -> int:
    """``RandomizedDelaySec``: a tenth of the interval, at most five minutes (60 s for calendars)."""
    return 60 if every is None else min(every // 10, 300)


def cron_schedule(seconds: int) -> str:
    """The five cron fields for "every ``seconds``"; only intervals cron can express evenly."""
    minutes, rest = divmod(seconds, 60)
    if rest == 0 and minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours, rest = divmod(seconds, 3600)
    if rest == 0 and hours < 24 and 24 % hours == 0:
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if seconds == 86400:
        return "0 0 * * *"
    raise ScheduleError(
        f"--every {systemd_timespan(seconds)}: cron cannot run that evenly; use a divisor of an hour"
        " (1m…30m), of a day (1h…12h) or 1d, or the systemd timer"
    )


# -- the command -------------------------------------------------------------------------
def redeploy_command(
    supakong: str,
    inventory: Path,
    *,
    log: Path | None = None,
    group: str | None = None,
    webhook: str | None = None,
    parallel: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The exact, self-contained command a scheduler runs: ``env`` sets the inventory (and
    passes ``SUPAKONG_HOST_ALLOWLIST`` through when it is set; set but empty is refused here
    as every run would refuse it), then ``supakong redeploy``."""
    env = [f"SUPAKONG_INVENTORY={inventory}"]
    allow = fence.current(environ or {})
    if allow is not None:
        env.append(f"{fence.ALLOWLIST_ENV}={allow.text}")
    argv = ["/usr/bin/env", *env, supakong, "redeploy"]
    if group:
        argv += ["--group", group]
    if log:
        argv += ["--log", str(log)]
    if webhook:
        argv += ["--webhook", webhook]
    if parallel:
        argv += ["--parallel", str(parallel)]
    return argv


def systemd_quote(word: str) -> str:
    """One word of an ``ExecStart=`` line: bare when safe, else double-quoted with C escapes;
    ``%`` (specifiers) and ``$`` (environment expansion) are doubled either way."""
    if not word or any(ord(ch) < 32 or ch == "\x7f" for ch in word):
        raise ScheduleError(f"cannot put {word!r} in a systemd command line (empty or control characters)")
    if not _SAFE_WORD.fullmatch(word):
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word.replace("%", "%%").replace("$", "$$")


def exec_line(argv: Sequence[str]) -> str:
    """``argv`` as the value of ``ExecStart=``."""
    return " ".join(systemd_quote(w) for w in argv)


def parse_exec_line(line: str) -> list[str]:
    """The argv systemd runs for an ``ExecStart=`` value written by :func:`exec_line`
    (double/single quotes, backslash escapes, ``%%`` and ``$$``)."""
    words: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        word, quote = [], ""
        while i < n and (quote or line[i] not in " \t"):
            ch = line[i]
            if quote and ch == quote:
                quote = ""
            elif not quote and ch in "\"'":
                quote = ch
            elif ch == "\\" and i + 1 < n:
                i += 1
                word.append(line[i])
            elif ch in "%$" and line[i + 1 : i + 2] == ch:
                i += 1
                word.append(ch)
            else:
                word.append(ch)
            i += 1
        if quote:
            raise ScheduleError(f"unterminated quote in ExecStart={line}")
        words.append("".join(word))
    return words


def cron_line(seconds: int, argv: Sequence[str], lock: Path, output: Path | None = None) -> str:
    """A crontab line: the schedule, ``flock -n LOCK`` (a run still going makes the next one
    exit at once) and the command, with ``%`` escaped (cron turns a bare ``%`` into a newline)."""
    for word in (str(lock), *argv, str(output or "")):
        refuse_control_characters("cron line", word)
    command = shlex.join(["flock", "-n", str(lock), *argv])
    if output:
        command += f" >>{shlex.quote(str(output))} 2>&1"
    return f"{cron_schedule(seconds)} {command.replace('%', chr(92) + '%')}"


# -- the units ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """When and what: every ``every`` seconds (monotonic) or on an ``OnCalendar=`` expression."""

    argv: tuple[str, ...]
    every: int | None = None
    on_calendar: str | None = None
    jitter: int | None = None
    timeout: int = DEFAULT_TIMEOUT
    name: str = DEFAULT_UNIT
    user: str | None = None
    description: str = "supakong: redeploy Kong's declarative config where it drifted"

    def __post_init__(self) -> None:
        for what, value in (
            ("--on-calendar", self.on_calendar),
            ("User=", self.user),
            ("Description=", self.description),
        ):
            refuse_control_characters(what, value or "")
        if (self.every is None) == (self.on_calendar is None):
            raise ScheduleError("give exactly one of --every INTERVAL or --on-calendar EXPR")
        if self.on_calendar is not None and (not self.on_calendar.strip() or "\n" in self.on_calendar):
            raise ScheduleError(f"--on-calendar: invalid expression {self.on_calendar!r}")
        if not _UNIT_NAME.fullmatch(self.name):
            raise ScheduleError(f"--name: invalid unit name {self.name!r}")

    @property
    def randomized_delay(self) -> int:
        """``RandomizedDelaySec`` in seconds."""
        return default_jitter(self.every) if self.jitter is None else self.jitter

    @property
    def service_name(self) -> str:
        """The ``.service`` unit's file name."""
        return f"{self.name}.service"

    @property
    def timer_name(self) -> str:
        """The ``.timer`` unit's file name."""
        return f"{self.name}.timer"


def render_units(schedule: Schedule, templates: Path = TEMPLATES) -> dict[str, str]:
    """``{file name: text}`` of the service and the timer."""
    import jinja2  # only this task renders units: not loaded with every `fab` start-up
    import jinja2.sandbox

    # Sandboxed: a template (the checkout's, writable by whoever owns it) cannot reach
    # Python's internals (``''.__class__.__mro__``…) to run code as the installing user.
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    context = {
        "s": schedule,
        "writable": writable_paths(schedule.argv),
        "exec_start": exec_line(schedule.argv),
        "timeout": systemd_timespan(schedule.timeout),
        "every": systemd_timespan(schedule.every) if schedule.every else None,
        "randomized_delay": systemd_timespan(schedule.randomized_delay),
    }
    return {
        schedule.service_name: env.get_template(SERVICE_TEMPLATE).render(context),
        schedule.timer_name: env.get_template(TIMER_TEMPLATE).render(context),
    }


def writable_paths(argv: Sequence[str]) -> str:
    """``ReadWritePaths=`` of the hardened service: the directory of the ``--log`` in
    ``argv`` (the log, its lock), quoted for systemd; '' if none."""
    words = list(argv)
    if "--log" in words[:-1]:
        return systemd_quote(str(Path(words[words.index("--log") + 1]).parent))
    return ""


def unit_dir(root: Path, user_mode: bool, home: Path) -> Path:
    """Where units go: ``ROOT/etc/systemd/system`` or ``HOME/.config/systemd/user``."""
    if user_mode:
        return home / USER_UNIT_DIR if root == Path("/") else root / home.relative_to("/") / USER_UNIT_DIR
    return root / SYSTEM_UNIT_DIR


def install_units(units: Mapping[str, str], directory: Path, *, private: bool = False) -> list[Path]:
    """Write the units into ``directory`` (mode 0644, or 0600 when ``private``: a webhook URL
    may carry a token); return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        path = directory / name
        tmp = directory / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600 if private else 0o644)
        tmp.replace(path)
        written.append(path)
    return written


def enable_commands(schedule: Schedule, user_mode: bool) -> list[list[str]]:
    """The ``systemctl`` commands that load and start the timer."""
    scope = ["--user"] if user_mode else []
    return [
        ["systemctl", *scope, "daemon-reload"],
        ["systemctl", *scope, "enable", "--now", schedule.timer_name],
    ]
