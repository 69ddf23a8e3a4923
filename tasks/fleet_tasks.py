"""Unattended runs: ``redeploy`` (what a timer runs) and ``schedule-redeploy`` (writes the
timer). Thin adapters over :mod:`supakong.redeploy` and :mod:`supakong.schedule`, imported
when a task runs (``fab --list`` and every other task do not pay for them)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from fabric import task
from invoke import Context, Exit

from supakong.redeploy import DEFAULT_LOCK_WAIT
from supakong.runner import Task, exits_cleanly, fail, inventory_path, select_hosts
from supakong.schedule import DEFAULT_UNIT


@task(
    help={
        "group": "Only the hosts of this inventory group (default: every inventory host)",
        "log": "Append the run's JSON line here (default ~/.local/state/supakong/redeploy.log)",
        "webhook": "POST the run's JSON here when a host failed (http or https URL)",
        "parallel": "Hosts at once (default 10)",
        "verify": "Verify Realtime through Kong after a restart (default: on)",
        "rollback": "Restore the previous file if Kong or the verification fails (default: on)",
        "restart": "Restart Kong even where its Admin API can load the new config without a restart",
        "lock-wait": f"Wait this long for a manual deploy's host lock (default {DEFAULT_LOCK_WAIT:.0f}s)",
    }
)
@exits_cleanly
def redeploy(
    c: Context,
    group: str | None = None,
    log: str | None = None,
    webhook: str | None = None,
    parallel: int = 10,
    verify: bool = True,
    rollback: bool = True,
    restart: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> None:
    """Unattended deploy-kong on every host: changes only what drifted; logs one JSON line per run."""
    from supakong.deploy import DeployOptions
    from supakong.fleet import Rollout
    from supakong.redeploy import check_webhook_url, default_log_path
    from supakong.redeploy import redeploy as run_redeploy
    from supakong.report import Output, recap_lines

    if webhook:
        try:
            check_webhook_url(webhook)
        except ValueError as exc:
            fail(str(exc))
    hosts = select_hosts(c, group)
    out = Output(prefix_hosts=len(hosts) > 1)
    log_path = Path(log).expanduser() if log else default_log_path()
    run = run_redeploy(
        hosts,
        DeployOptions(verify=verify, rollback=rollback, lock_wait=float(lock_wait), restart=restart),
        out,
        log=log_path,
        inventory=str(inventory_path().absolute()),
        group=group,
        webhook=webhook,
        rollout=Rollout(parallel),
    )
    out.lines(recap_lines(run.results))
    out.line(f"logged to {log_path}" + (f"; webhook {run.record['webhook']}" if "webhook" in run.record else ""))
    if run.exit_code:
        raise Exit(code=run.exit_code)


def _supakong_executable() -> str:
    """The ``supakong`` console script of this virtualenv (not resolved: a venv's python is a
    symlink), else this interpreter running the same entry point."""
    script = Path(sys.executable).parent / "supakong"
    return str(script) if script.exists() else sys.executable


def _refuse_unless_root_owned(inventory: Path) -> None:
    """``--as-root``: every file the root timer runs or reads (the venv and its interpreter,
    supakong's code, the inventory, the templates, the ssh configs) and the directories above
    them must be root's alone: whoever can write one of them would run code as root."""
    import sysconfig

    import supakong
    from supakong.inventory import load_inventory
    from supakong.schedule import ScheduleError, not_root_owned

    script = Path(_supakong_executable())
    paths = [script, Path(os.path.realpath(sys.executable)), Path(supakong.__file__).parent, inventory]
    paths += [Path(sysconfig.get_paths()["purelib"])]
    for host in load_inventory(inventory).hosts.values():
        paths += [host.template] + ([host.ssh_config_file] if host.ssh_config_file else [])
    paths.append(Path.home() / ".ssh" / "config")
    found = not_root_owned(paths)
    if found:
        raise ScheduleError(f"--as-root: {found[0]}" + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))


@task(
    help={
        "every": "Run every INTERVAL: 15m, 1h, 1h30m, 1d (default 15m unless --on-calendar)",
        "on-calendar": "Run on a systemd calendar expression instead, e.g. '*-*-* 03:00'",
        "jitter": "RandomizedDelaySec, e.g. 2m (default: a tenth of --every, at most 5m)",
        "timeout": "TimeoutStartSec: kill a run after this long (default 10m)",
        "print": "Print the units (the default when neither --install nor --cron)",
        "install": "Write the units to /etc/systemd/system (or ~/.config/systemd/user with --user)",
        "user": "A user unit (systemctl --user) instead of a system unit",
        "root": "Install under this directory instead of / (like systemctl --root)",
        "cron": "Print a crontab line (behind flock -n) instead of systemd units",
        "group": "Only redeploy this inventory group",
        "log": "The redeploy log (default ~/.local/state/supakong/redeploy.log)",
        "webhook": "POST the run's JSON here on failure (written into the unit: 0600 then)",
        "name": f"Unit name (default {DEFAULT_UNIT})",
        "run-as": "As root: the non-root user the unit runs as (User=; default $SUDO_USER)",
        "as-root": "As root: run the unit as root, only if every file it runs is root's alone",
    },
    klass=Task,
)
@exits_cleanly
def schedule_redeploy(
    c: Context,
    every: str | None = None,
    on_calendar: str | None = None,
    jitter: str | None = None,
    timeout: str | None = None,
    print_: bool = False,
    install: bool = False,
    user: bool = False,
    root: str = "/",
    cron: bool = False,
    group: str | None = None,
    log: str | None = None,
    webhook: str | None = None,
    name: str = DEFAULT_UNIT,
    run_as: str | None = None,
    as_root: bool = False,
) -> None:
    """Write a systemd timer (or print a cron line) that runs `redeploy` unattended."""
    from supakong.redeploy import check_webhook_url, default_log_path
    from supakong.schedule import (
        DEFAULT_TIMEOUT,
        Schedule,
        ScheduleError,
        cron_line,
        enable_commands,
        install_units,
        parse_duration,
        parse_interval,
        redeploy_command,
        render_units,
        service_user,
        unit_dir,
    )

    inventory = inventory_path().absolute()
    if not inventory.is_file():
        fail(f"{inventory}: inventory not found (set SUPAKONG_INVENTORY or run in the checkout)")
    if webhook:
        try:
            check_webhook_url(webhook)
        except ValueError as exc:
            fail(str(exc))
    try:
        runs_as = service_user(
            user_mode=user or cron, euid=os.geteuid(), environ=os.environ, run_as=run_as, as_root=as_root
        )
    except ScheduleError:
        if install:
            raise
        runs_as = None  # printed only: the install will ask
    if as_root:
        _refuse_unless_root_owned(inventory)
    home = Path(pwd.getpwnam(runs_as).pw_dir) if runs_as and os.geteuid() == 0 else None
    default_log = home / ".local/state/supakong/redeploy.log" if home else default_log_path()
    log_path = (Path(log).expanduser() if log else default_log).absolute()
    argv = redeploy_command(
        _supakong_executable(), inventory, log=log_path, group=group, webhook=webhook, environ=os.environ
    )
    seconds = parse_interval(every or "15m") if on_calendar is None else None
    if every and on_calendar:
        raise ScheduleError("give either --every or --on-calendar, not both")
    if cron:
        if seconds is None:
            fail("--cron needs --every (cron has no calendar expressions of systemd's kind)")
        print(cron_line(seconds, argv, lock=log_path.with_suffix(".lock"), output=log_path.with_suffix(".out")))
        return
    schedule = Schedule(
        argv=tuple(argv),
        every=seconds,
        on_calendar=on_calendar,
        jitter=parse_duration(jitter, "--jitter") if jitter is not None else None,
        timeout=parse_duration(timeout, "--timeout", 1) if timeout else DEFAULT_TIMEOUT,
        name=name,
        user=runs_as,
    )
    units = render_units(schedule)
    if not install:
        for unit, text in units.items():
            print(f"# ---- {unit}\n{text}")
        return
    directory = unit_dir(Path(root), user, Path.home())
    if Path(root) == Path("/"):  # ReadWritePaths= needs the log's directory to exist
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if runs_as and os.geteuid() == 0:
            shutil.chown(log_path.parent, runs_as)
    for path in install_units(units, directory, private=bool(webhook)):
        print(f"wrote {path}")
    commands = enable_commands(schedule, user)
    if Path(root) == Path("/") and Path("/run/systemd/system").is_dir():
        for argv_ in commands:
            subprocess.run(argv_, check=True)
        print(f"enabled and started {schedule.timer_name}")
    else:
        print("to start it: " + " && ".join(" ".join(a) for a in commands))
