"""doctor on the sandbox: "config loaded" compares the running Kong's configuration_hash
(GET /status through resty inside the container) with the host file rendered as the
entrypoint renders it, so a config posted to the Admin API but not on disk is drift."""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path

import pytest
from test_kong_2026 import kong_2026  # noqa: F401 - the fixture
from test_reload_2026 import reload as reload_2026

from supakong.apply import APPLIED
from supakong.container import inspect_container, wait_until_healthy
from supakong.deploy import DeployOptions, deploy_host
from supakong.doctor import doctor_host
from supakong.doctor_hash import read_running_config
from supakong.hostprofile import build_profile
from supakong.render import render_kong_config
from supakong.report import BufferOutput
from supakong.sandbox.stack import docker_client
from supakong.transport import HostConnection
from supakong.verify_run import VerifyOptions

#: What a person (or another tool) might do by hand: render the file as the eval entrypoint
#: does and post it to the Admin API from inside the container; prints the HTTP status.
POST_LUA = """
local http = require "resty.http"
local f = assert(io.open("/tmp/posted.yml", "rb")); local body = f:read("*a"); f:close()
local res, err = http.new():request_uri("http://127.0.0.1:8001/config",
  { method = "POST", body = body, headers = { ["Content-Type"] = "text/yaml" } })
io.stdout:write(tostring(res and res.status or err), "\\n")
"""


def post_to_admin_api(spec, content: bytes) -> None:
    """Render ``content`` with the eval line and POST it to Kong's /config (no file written
    on the host)."""
    render = 'eval "echo \\"$(cat)\\"" > /tmp/posted.yml && resty -e "$1"; rm -f /tmp/posted.yml'
    proc = subprocess.run(
        ["docker", "-H", f"unix://{spec.docker_socket}", "exec", "-i", spec.kong_container]
        + ["sh", "-c", render, "sh", POST_LUA],
        input=content,
        capture_output=True,
        timeout=60,
    )
    assert proc.stdout.decode().strip() == "201", proc.stdout + proc.stderr


def config_loaded_line(out: BufferOutput) -> list[str]:
    """The "config loaded" row and its notes/fix."""
    lines = out.text.splitlines()
    start = next(i for i, line in enumerate(lines) if "config loaded" in line)
    rest = itertools.takewhile(lambda line: line.startswith("      "), lines[start + 1 :])
    return [lines[start], *rest]


@pytest.fixture()
def converged(sandbox_spec, host):
    deploy_host(host, DeployOptions(verify=False), BufferOutput())
    return sandbox_spec


def test_a_config_posted_but_not_on_disk_is_drift_and_the_files_own_passes(converged, host):
    host_file = converged.kong_config_path.read_bytes()

    post_to_admin_api(converged, host_file + b"# posted by hand, never written to the host\n")
    out = BufferOutput()
    doctor_host(host, VerifyOptions(), out)
    row = config_loaded_line(out)
    assert "✗ config loaded" in row[0] and "Kong runs another config than" in row[0], row
    assert "posted to the Admin API" in row[0] and f"docker restart {host.kong_container}" in "\n".join(row)

    post_to_admin_api(converged, host_file)  # the host's own file, posted: the same config
    out = BufferOutput()
    doctor_host(host, VerifyOptions(), out)
    row = "\n".join(config_loaded_line(out))
    assert "✓ config loaded" in row and "= md5 of the file as the entrypoint renders it" in row, row


def test_after_a_reload_deploy_kong_runs_the_host_file_by_hash(converged, host, secrets, tmp_path):
    variant = tmp_path / "variant.yml"
    variant.write_text(render_kong_config(host, secrets) + f"# reloaded {time.time_ns()}\n")
    result = deploy_host(host, DeployOptions(file=variant, verify=False), BufferOutput())
    assert result.method == "reloaded"
    out = BufferOutput()
    doctor_host(host, VerifyOptions(), out)
    row = "\n".join(config_loaded_line(out))
    # The file is newer than Kong's start (it was reloaded, not restarted): the hash decides.
    assert "✓ config loaded" in row and "= md5 of the file as the entrypoint renders it" in row, row
    assert f"was reloaded into {host.kong_container}" in row, row  # the reload marker agrees


def test_kong_2_8_after_a_start_is_judged_by_the_files_time_and_says_why(converged, host):
    client = docker_client(converged)
    try:
        client.restart(converged.kong_container, timeout=10)  # loads the file: hash 000…0 on 2.8.1
        wait_until_healthy(client, converged.kong_container, timeout=60)
    finally:
        client.close()
    out = BufferOutput()
    doctor_host(host, VerifyOptions(), out)
    row = "\n".join(config_loaded_line(out))
    assert "✓ config loaded" in row and "started after the last change" in row, row
    assert "configuration_hash 000000000000" in row and "Kong/kong#9911" in row, row


def test_the_2026_kongs_hash_is_its_template_as_kong_entrypoint_sh_renders_it(kong_2026, host):  # noqa: F811
    """3.x hashes the file it loaded at start (no zeros): the template, rendered by re-running
    the mounted kong-entrypoint.sh, hashes the same; after a reload of another template the
    old one is drift and the new one is not."""
    client = docker_client(kong_2026)
    try:
        mounts = client.inspect_container(kong_2026.kong_container)["Mounts"]
    finally:
        client.close()
    template = Path(next(m["Source"] for m in mounts if m["Destination"] == "/home/kong/temp.yml")).read_bytes()

    def running_config(content: bytes):  # type: ignore[no-untyped-def]
        with HostConnection(host) as conn:
            kong = inspect_container(conn.engine(), kong_2026.kong_container)
            return read_running_config(conn.engine(), kong, build_profile(kong), content)

    started = running_config(template)
    assert started.kong_version == "3.9.3" and started.running_hash == started.file_hash, started
    changed = template + f"# reloaded {time.time_ns()}\n".encode()
    assert reload_2026(host, kong_2026, changed).result == APPLIED
    assert running_config(changed).running_hash == running_config(changed).file_hash
    drift = running_config(template)
    assert drift.file_hash is not None and drift.running_hash not in (None, drift.file_hash), drift
