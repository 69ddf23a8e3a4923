"""doctor's "config loaded" by hash (supakong.doctor_hash): where the Admin API is, the
exec's output read, the verdict from both hashes; and the render script run by real shells
(bash and busybox sh) on the eval line and on the sandbox's kong-entrypoint.sh, held to
md5 of what the entrypoint itself writes."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from supakong.checks import FAIL, OK, SKIP, Check
from supakong.doctor_hash import (
    ZERO_HASH,
    RunningConfig,
    judge_running_config,
    parse_output,
    render_script,
    status_lua,
)
from supakong.eval_expansion import expand_like_eval
from supakong.hostprofile import AWK, EVAL, KONG, NO_EXPANSION, HostProfile

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT_SH = REPO / "supakong" / "sandbox" / "kong-entrypoint.sh"
H1, H2 = "a" * 32, "b" * 32
LOADED_OK = Check("config loaded", OK, "started after the last change of /srv/kong.yml and sees it")
LOADED_FAIL = Check("config loaded", FAIL, "/srv/kong.yml changed after kong started", "restart Kong")
TEMPLATE = (
    "_format_version: '2.1'\nconsumers:\n  - username: anon\n    keyauth_credentials:\n"
    "      - key: $SUPABASE_ANON_KEY\n"
)
ENV = {"SUPABASE_ANON_KEY": "eyJ.anon-key", "PATH": "/usr/bin:/bin"}


# --------------------------------------------------------------------- the Admin API


def test_the_status_lua_asks_that_address_and_prints_only_the_hash():
    lua = status_lua("http://[::1]:9001")
    assert 'request_uri("http://[::1]:9001/status")' in lua
    assert "res.body" not in lua.split("cjson.decode", 1)[1].split("\n", 1)[1]  # the body is decoded, never printed


# --------------------------------------------------------------------- the exec's output


def test_both_hashes_are_read_from_the_output():
    running = parse_output(0, f"stray line\nsupakong-rendered {H1}\nsupakong-status 200 {H2}\n", "3.9.1")
    assert running == RunningConfig("3.9.1", H2, H1, "")


@pytest.mark.parametrize(
    ("code", "output", "note"),
    [
        (0, f"supakong-rendered {H1}\nsupakong-status no-resty \n", "no resty"),
        (
            0,
            f"supakong-rendered {H1}\nsupakong-status error connection_refused\n",
            "did not answer (connection refused)",
        ),
        (0, f"supakong-rendered {H1}\nsupakong-status 401 \n", "answered HTTP 401"),
        (0, f"supakong-rendered {H1}\nsupakong-status 200 \n", "no configuration_hash"),
        (0, f"supakong-rendered {H1}\n", "no answer from resty"),
    ],
)
def test_a_status_that_cannot_be_read_says_why(code, output, note):
    running = parse_output(code, output, "2.8.1")
    assert running.running_hash is None and running.file_hash == H1
    assert note in running.note


def test_a_render_that_failed_gives_no_file_hash():
    output = f"supakong-render-failed eval\nsupakong-rendered {H1}\nsupakong-status 200 {H2}\n"
    running = parse_output(0, output, "2.8.1")
    assert running.file_hash is None and running.running_hash == H2
    assert "could not render the host file as the entrypoint does (eval)" in running.note


def test_a_file_that_could_not_be_written_into_the_container_says_so():
    assert "could not write the host file" in parse_output(100, "cat: write error", "2.8.1").note


# --------------------------------------------------------------------- the verdict


def test_equal_hashes_pass_even_when_the_file_is_newer_than_kongs_start():
    # A config applied with POST /config: the file changed after Kong started, Kong runs it.
    check = judge_running_config(RunningConfig("3.9.1", H1, H1), LOADED_FAIL, "/srv/kong.yml", "edge-1", "kong")
    assert check.status == OK and check.name == "config loaded"
    assert f"configuration_hash {H1[:12]}" in check.detail and "/srv/kong.yml" in check.detail


def test_equal_hashes_confirm_an_ok_verdict_in_a_note():
    check = judge_running_config(RunningConfig("2.8.1", H1, H1), LOADED_OK, "/srv/kong.yml", "edge-1", "kong")
    assert (check.status, check.detail) == (OK, LOADED_OK.detail)
    assert check.notes == (f"configuration_hash {H1[:12]} = md5 of the file as the entrypoint renders it",)


def test_a_posted_config_the_file_does_not_hold_is_drift():
    check = judge_running_config(RunningConfig("3.9.1", H2, H1), LOADED_OK, "/srv/kong.yml", "edge-1", "kong")
    assert check.status == FAIL
    assert H2[:12] in check.detail and H1[:12] in check.detail and "posted to the Admin API" in check.detail
    assert "docker restart kong" in check.fix and "fab deploy-kong -H edge-1" in check.fix


def test_a_posted_config_is_drift_on_kong_2_8_too():
    check = judge_running_config(RunningConfig("2.8.1", H2, H1), LOADED_OK, "/srv/kong.yml", "edge-1", "kong")
    assert check.status == FAIL


@pytest.mark.parametrize("loaded", [LOADED_OK, LOADED_FAIL])
def test_kong_2_8_zero_hash_after_a_start_falls_back_to_the_files_time(loaded):
    check = judge_running_config(RunningConfig("2.8.1", ZERO_HASH, H1), loaded, "/srv/kong.yml", "edge-1", "kong")
    assert (check.status, check.detail) == (loaded.status, loaded.detail)
    assert "Kong/kong#9911" in check.notes[-1] and "2.8.1" in check.notes[-1]


def test_a_zero_hash_on_kong_3_is_drift_not_the_old_bug():
    check = judge_running_config(RunningConfig("3.9.1", ZERO_HASH, H1), LOADED_OK, "/srv/kong.yml", "edge-1", "kong")
    assert check.status == FAIL


def test_without_both_hashes_the_files_time_decides_and_the_note_says_why():
    running = RunningConfig("2.8.1", None, H1, "the container has no resty to ask the Admin API with")
    check = judge_running_config(running, LOADED_OK, "/srv/kong.yml", "edge-1", "kong")
    assert check.status == OK and check.notes == ("configuration_hash not compared: " + running.note,)


def test_a_kong_that_is_not_running_keeps_the_old_verdict():
    skipped = Check("config loaded", SKIP, "kong is not running")
    assert judge_running_config(None, skipped, "/srv/kong.yml", "edge-1", "kong") == skipped


# --------------------------------------------------------------------- the render, in real shells

SHELLS = {
    "bash": [shutil.which("bash") or "/bin/bash"],
    "busybox sh": [shutil.which("busybox") or "/bin/busybox", "sh"],
}


def run_script(shell: list[str], script: str, content: str, workdir: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [*shell, "-c", script, "sh", str(workdir), "unused"],
        input=content.encode(),
        capture_output=True,
        env=env,
        timeout=20,
    )
    return proc.stdout.decode() + proc.stderr.decode()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@pytest.mark.parametrize("shell", SHELLS.values(), ids=SHELLS.keys())
def test_the_eval_render_hashes_what_the_2_8_entrypoint_writes(shell, tmp_path):
    profile = HostProfile(gateway=KONG, kong_version="2.8.1", expansion=EVAL)
    output = run_script(shell, render_script(profile), TEMPLATE, tmp_path / "work", ENV)
    expected = expand_like_eval(TEMPLATE, ENV)
    assert expected is not None and "eyJ.anon-key" in expected
    assert parse_output(0, output, "2.8.1").file_hash == md5(expected)
    assert "supakong-status no-resty" in output  # no resty on this PATH: asked nothing
    assert not (tmp_path / "work").exists(), "the scratch directory is removed"


@pytest.mark.parametrize("shell", SHELLS.values(), ids=SHELLS.keys())
def test_the_awk_render_runs_the_mounted_entrypoint_script_without_starting_kong(shell, tmp_path):
    script = tmp_path / "kong-entrypoint.sh"
    script.write_text(ENTRYPOINT_SH.read_text())
    profile = HostProfile(
        gateway=KONG,
        kong_version="3.9.1",
        expansion=AWK,
        entrypoint_script=str(script),
        template_mount="/home/kong/temp.yml",
    )
    env = {**ENV, "PATH": f"{Path(SHELLS['busybox sh'][0]).parent}:/usr/bin:/bin"}
    output = run_script(shell, render_script(profile), TEMPLATE + "      - key:\n", tmp_path / "work", env)
    # What the script writes: $NAME substituted from the env, the empty `- key:` line deleted.
    assert parse_output(0, output, "3.9.1").file_hash == md5(TEMPLATE.replace("$SUPABASE_ANON_KEY", "eyJ.anon-key"))


def test_an_entrypoint_script_without_its_anchors_is_not_run(tmp_path):
    script = tmp_path / "kong-entrypoint.sh"
    script.write_text("#!/bin/sh\ntouch " + str(tmp_path / "ran") + "\nkong docker-start\n")
    profile = HostProfile(
        gateway=KONG, expansion=AWK, entrypoint_script=str(script), template_mount="/home/kong/temp.yml"
    )
    output = run_script(SHELLS["bash"], render_script(profile), TEMPLATE, tmp_path / "work", ENV)
    running = parse_output(0, output, "3.9.1")
    assert running.file_hash is None and "no longer reads /home/kong/temp.yml" in running.note
    assert not (tmp_path / "ran").exists()


def test_a_file_nothing_expands_is_hashed_as_it_is(tmp_path):
    profile = HostProfile(gateway=KONG, expansion=NO_EXPANSION)
    output = run_script(SHELLS["bash"], render_script(profile), TEMPLATE, tmp_path / "work", ENV)
    assert parse_output(0, output, "3.9.1").file_hash == md5(TEMPLATE)
