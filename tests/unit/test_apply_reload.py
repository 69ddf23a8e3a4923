"""The apply strategy, pure parts: reload or restart, the reload's exec and its verdicts,
and the reload marker that keeps the next run from restarting a Kong that runs the file.

The reload script itself runs here under a real /bin/sh against a fake ``kong`` and
``resty`` on PATH, so its render, parse and sync steps are checked without a container."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from supakong.apply import APPLIED, FALLBACK, REFUSED, RELOADED, RESTARTED, admin_url, choose_apply
from supakong.apply.reload_script import judge_reload, reload_argv
from supakong.container import ContainerState
from supakong.hostprofile import AWK, EVAL, build_profile
from supakong.look import split_sections
from supakong.plan import HostState, loaded_marker, plan_deploy
from supakong.remote_file import RemoteFile

EVAL_COMMAND = (
    "bash",
    "-c",
    'eval "echo \\"$(cat ~/temp.yml)\\"" > ~/kong.yml && /docker-entrypoint.sh kong docker-start',
)
LEGACY_ENV = {"KONG_DATABASE": "off", "KONG_DECLARATIVE_CONFIG": "/home/kong/kong.yml"}


def kong(env: dict[str, str] | None = None, **kw: object) -> ContainerState:
    values: dict[str, object] = {
        "name": "supabase-kong",
        "exists": True,
        "status": "running",
        "running": True,
        "started_at": 1000.0,
        "image": "kong:2.8.1",
        "env": LEGACY_ENV if env is None else env,
        "command": EVAL_COMMAND,
        "mounts": (("/srv/kong.yml", "/home/kong/temp.yml"),),
    }
    values.update(kw)
    return ContainerState(**values)  # type: ignore[arg-type]


def choose(container: ContainerState, replace: bool = True, force: bool = False):  # type: ignore[no-untyped-def]
    return choose_apply(container, build_profile(container), replace=replace, force_restart=force)


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("127.0.0.1:8001 reuseport backlog=16384, 127.0.0.1:8444 http2 ssl", "http://127.0.0.1:8001"),
        ("0.0.0.0:9001", "http://127.0.0.1:9001"),
        ("127.0.0.1:8444 ssl, [::1]:8002", "http://[::1]:8002"),
        ("off", None),
        ("127.0.0.1:8444 http2 ssl", None),
    ],
)
def test_the_admin_url_is_the_first_plain_listener_reached_on_loopback(listen: str, url: str | None) -> None:
    assert admin_url(listen) == url


def test_a_running_db_less_kong_is_reloaded_on_the_default_admin_listener() -> None:
    choice = choose(kong())
    assert (choice.method, choice.admin_url, choice.settle) == (RELOADED, "http://127.0.0.1:8001", 0.0)
    assert "reload through Kong's Admin API" in choice.describe()


def test_kong_3_gets_time_to_rebuild_its_routers_after_the_201() -> None:
    assert choose(kong(image="kong/kong:3.9.1")).settle == 1.0


@pytest.mark.parametrize(
    ("container", "replace", "force", "why"),
    [
        (kong(), True, True, "--restart"),
        (kong(), False, False, "the file is unchanged"),
        (kong(running=False, status="exited"), True, False, "Kong is exited"),
        (kong(restarting=True, status="restarting"), True, False, "Kong is restarting"),
        (kong(health="unhealthy"), True, False, "unhealthy"),
        (kong(env={**LEGACY_ENV, "KONG_DATABASE": "postgres"}), True, False, "not DB-less"),
        (kong(env={"KONG_DATABASE": "off"}), True, False, "KONG_DECLARATIVE_CONFIG is not set"),
        (kong(env={**LEGACY_ENV, "KONG_ADMIN_LISTEN": "off"}), True, False, "Admin API is off (KONG_ADMIN_LISTEN=off)"),
    ],
)
def test_everything_else_restarts_and_says_why(container: ContainerState, replace: bool, force: bool, why: str) -> None:
    choice = choose(container, replace, force)
    assert choice.method == RESTARTED and why in choice.why


@pytest.mark.parametrize(
    ("code", "output", "result", "status"),
    [
        (0, "supakong-reload: HTTP 201 configuration_hash=ab md5=ab\n", APPLIED, 201),
        (0, "supakong-reload: HTTP 304 configuration_hash=ab md5=ab\n", APPLIED, 304),
        (2, "supakong-reload: POST /config answered HTTP 400: declarative config is invalid: {}\n", REFUSED, 0),
        (2, "supakong-reload: kong config parse refused the rendered file:\nError: Failed parsing:\n", REFUSED, 0),
        (3, "supakong-reload: POST http://127.0.0.1:8001/config failed: connection refused\n", FALLBACK, 0),
        (4, "supakong-reload: POST /config answered HTTP 503: Kong currently exiting\n", FALLBACK, 0),
        (5, "supakong-reload: HTTP 201 configuration_hash=00 md5=ab\n", FALLBACK, 0),
        (6, "supakong-reload: no resty in the image\n", FALLBACK, 0),
        (126, "OCI runtime exec failed\n", FALLBACK, 0),
    ],
)
def test_the_exec_answer_decides_applied_refused_or_fallback(code: int, output: str, result: str, status: int) -> None:
    outcome = judge_reload(code, output)
    assert (outcome.result, outcome.status) == (result, status)
    assert "supakong-reload:" not in outcome.detail


def test_a_fallback_names_the_cause() -> None:
    assert judge_reload(3, "supakong-reload: POST x failed: timeout\n").detail.startswith(
        "the Admin API is unreachable: POST x failed: timeout"
    )


# -- the script under a real sh, with stand-in kong and resty ---------------------------------
def fake_bin(tmp_path: Path, parse_exit: int, resty_exit: int) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (
        ("kong", f'cp "$3" {tmp_path}/parsed.yml; exit {parse_exit}'),
        (
            "resty",
            f'cp "$SUPAKONG_CONFIG" {tmp_path}/posted.yml; echo "$SUPAKONG_ADMIN" > {tmp_path}/admin;'
            f' echo "supakong-reload: HTTP 201"; exit {resty_exit}',
        ),
    ):
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def run_script(
    tmp_path: Path,
    expansion: str,
    template: str,
    parse_exit: int = 0,
    resty_exit: int = 0,
    entrypoint: str = "",
    parse: bool = True,
) -> tuple[int, str, Path]:
    declarative = tmp_path / "kong.yml"
    declarative.write_text("old\n")
    argv = reload_argv(
        str(tmp_path / "work"), expansion, entrypoint, "/home/kong/temp.yml", "http://127.0.0.1:8001", 0, parse
    )
    env = {
        "PATH": f"{fake_bin(tmp_path, parse_exit, resty_exit)}:{os.environ['PATH']}",
        "KONG_DECLARATIVE_CONFIG": str(declarative),
        "ANON": "anon-key",
    }
    done = subprocess.run(argv, input=template.encode(), capture_output=True, env=env, timeout=20)
    return done.returncode, done.stdout.decode() + done.stderr.decode(), declarative


def test_the_eval_era_renders_posts_and_syncs_the_containers_file(tmp_path: Path) -> None:
    code, output, declarative = run_script(tmp_path, EVAL, "key: $ANON\n")
    assert code == 0, output
    assert (tmp_path / "posted.yml").read_text() == "key: anon-key\n" == declarative.read_text()
    assert (tmp_path / "admin").read_text() == "http://127.0.0.1:8001\n"
    assert not (tmp_path / "work").exists(), "the work directory is removed"


def test_a_refused_parse_posts_nothing_and_leaves_the_containers_file(tmp_path: Path) -> None:
    code, output, declarative = run_script(tmp_path, EVAL, "key: $ANON\n", parse_exit=1)
    assert code == 2 and "kong config parse refused" in output
    assert not (tmp_path / "posted.yml").exists() and declarative.read_text() == "old\n"
    assert not (tmp_path / "work").exists()


def test_after_the_preflights_parse_the_reload_posts_without_parsing_again(tmp_path: Path) -> None:
    code, output, declarative = run_script(tmp_path, EVAL, "key: $ANON\n", parse_exit=1, parse=False)
    assert code == 0, output
    assert not (tmp_path / "parsed.yml").exists(), "kong config parse did not run"
    assert declarative.read_text() == "key: anon-key\n"


def test_a_failed_post_leaves_the_containers_file(tmp_path: Path) -> None:
    code, _, declarative = run_script(tmp_path, EVAL, "key: $ANON\n", resty_exit=3)
    assert code == 3 and declarative.read_text() == "old\n"


def test_the_awk_era_reruns_the_entrypoint_without_its_exec(tmp_path: Path) -> None:
    entrypoint = tmp_path / "kong-entrypoint.sh"
    entrypoint.write_text(
        "export LUA_AUTH_EXPR=computed\n"
        'sed -e "s/\\$LUA_AUTH_EXPR/$LUA_AUTH_EXPR/" /home/kong/temp.yml > "$KONG_DECLARATIVE_CONFIG"\n'
        "exec /entrypoint.sh kong docker-start\n"
    )
    code, output, declarative = run_script(tmp_path, AWK, "auth: $LUA_AUTH_EXPR\n", entrypoint=str(entrypoint))
    assert code == 0, output
    assert declarative.read_text() == "auth: computed\n"


def test_an_entrypoint_without_its_anchors_is_not_guessed_at(tmp_path: Path) -> None:
    entrypoint = tmp_path / "kong-entrypoint.sh"
    entrypoint.write_text('cp /elsewhere/temp.yml "$KONG_DECLARATIVE_CONFIG"\nexec kong docker-start\n')
    code, output, _ = run_script(tmp_path, AWK, "x: 1\n", entrypoint=str(entrypoint))
    assert code == 7 and "cannot re-run it" in output
    assert judge_reload(code, output).result == FALLBACK


# -- the marker -------------------------------------------------------------------------------
def host_state(loaded: str, file_sha: str = "a" * 64, mtime: float = 2000.0) -> HostState:
    file = RemoteFile("/srv/kong.yml", True, file_sha, 10, 0o640, 0, 0, mtime)
    return HostState(file=file, kong=kong(), realtime=None, loaded=loaded)


def test_a_file_reloaded_into_this_kong_is_not_a_pending_restart() -> None:
    assert not plan_deploy("a" * 64, host_state(loaded_marker("a" * 64, 1000.0))).changes
    # another file, or the same file loaded into an earlier incarnation: restart pending
    assert plan_deploy("a" * 64, host_state(loaded_marker("b" * 64, 1000.0))).restart
    assert plan_deploy("a" * 64, host_state(loaded_marker("a" * 64, 999.0))).restart
    assert plan_deploy("a" * 64, host_state("")).restart


def test_the_look_reads_the_marker_beside_the_config(tmp_path: Path) -> None:
    from supakong.look import look_argv

    config = tmp_path / "kong.yml"
    config.write_text("x\n")
    (tmp_path / ".supakong").mkdir()
    (tmp_path / ".supakong" / "loaded").write_text(loaded_marker(hashlib.sha256(b"x\n").hexdigest(), 5.0) + "\n")
    output = subprocess.run(look_argv(str(config)), capture_output=True, check=True).stdout.decode()
    assert split_sections(output)["loaded"] == loaded_marker(hashlib.sha256(b"x\n").hexdigest(), 5.0)
