"""Adopting a server supakong did not build (`supakong init`), against a sandbox VPS whose
kong file is a user's own: comments, a custom `my-api` service, and a realtime route
edited by hand with the seed's mistakes (Kong OSS refuses it: Kong crash-loops).

The last test is the issue's "done when": a real (non-editable) `pip install` of this
project into a fresh virtualenv outside the checkout, an inventory in a temporary
directory, `supakong init … --fix` from one working directory and `supakong deploy-kong`
from the project's: SUBSCRIBED, the custom service kept, no key in clear on the host,
and a second init and deploy change nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sandbox_specs import related_spec
from socket_guard import LOG_ENV

from supakong.adopt import InitRequest, init_host
from supakong.errors import TransportError
from supakong.report import BufferOutput
from supakong.sandbox import SandboxSpec, sandbox_reset
from supakong.sandbox.stack import SEEDS
from supakong.secrets import parse_env_file

REPO = Path(__file__).resolve().parents[2]
CUSTOM_SEED = "seed-kong-custom.yml"


@pytest.fixture(scope="module")
def own_spec() -> SandboxSpec:
    """The sandbox with the user's own kong file (brought up once for the module)."""
    spec = dataclasses.replace(related_spec("own", 4), seed=CUSTOM_SEED, seed_loads=False)
    return sandbox_reset(spec)


@pytest.fixture()
def own(own_spec: SandboxSpec) -> SandboxSpec:
    """That sandbox in its before state (the user's file, Kong refusing it)."""
    return sandbox_reset(own_spec)


def request(spec: SandboxSpec, directory: Path, fix: bool = False) -> InitRequest:
    return InitRequest(
        name=spec.name, ssh=spec.ssh_alias, ssh_config=spec.ssh_config_path, directory=directory, fix=fix
    )


def keys(spec: SandboxSpec) -> dict[str, str]:
    values = parse_env_file(spec.secrets_path.read_text(), "sandbox")
    return {k: v for k, v in values.items() if k in ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY", "JWT_SECRET")}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_init_finds_the_host_by_image_and_labels_and_writes_an_inventory_that_loads(own, tmp_path):
    live = own.kong_config_path
    before = (sha256(live), live.stat().st_mtime_ns)
    out = BufferOutput()
    result = init_host(request(own, tmp_path), out)
    assert result.status == "changed", out.text

    host_vars = yaml.safe_load((tmp_path / "inventory" / "host_vars" / f"{own.name}.yml").read_text())
    assert host_vars["kong_container"] == own.kong_container
    assert host_vars["realtime_container"] == own.realtime_container
    assert host_vars["kong_config_path"] == str(live) and host_vars["kong_config_mount"] == "/home/kong/temp.yml"
    assert host_vars["docker_socket"] == str(own.docker_socket)  # the session's DOCKER_HOST
    assert host_vars["public_url"] == own.public_url
    assert host_vars["realtime_upstream_host"] == "realtime-dev.supabase-realtime"
    found = host_vars["supakong_discovered"]
    assert (found["kong_version"], found["entrypoint"], found["router_flavor"]) == ("2.8.1", "eval", "traditional")
    assert found["kong_credentials"] == ["SUPABASE_ANON_KEY", "SUPABASE_SERVICE_KEY"]
    assert (found["owner"], found["compose_project"]) == ("compose", own.name)

    # without --fix the template is the user's file, byte for byte (its keys are references already)
    template = tmp_path / "templates" / own.name / "kong.yml.j2"
    assert template.read_bytes() == live.read_bytes()
    # read-only: the file on the host is untouched, and nothing of supakong's is left there
    assert (sha256(live), live.stat().st_mtime_ns) == before
    assert not (live.parent / ".supakong").exists()
    assert "preserve_host: true" in out.text  # the diff: deploying would write the file as it is
    for value in keys(own).values():
        assert value not in out.text


def test_keys_written_in_clear_in_the_users_file_become_references(own, tmp_path):
    secrets = keys(own)
    text = (SEEDS / CUSTOM_SEED).read_text()
    inline = text.replace("$SUPABASE_ANON_KEY", secrets["SUPABASE_ANON_KEY"]).replace(
        "$SUPABASE_SERVICE_KEY", secrets["SUPABASE_SERVICE_KEY"]
    )
    own.kong_config_path.write_text(inline)
    out = BufferOutput()
    init_host(request(own, tmp_path), out)
    template = (tmp_path / "templates" / own.name / "kong.yml.j2").read_text()
    assert template == text  # the values became Supabase's own references again
    assert "SUPABASE_ANON_KEY, SUPABASE_SERVICE_KEY written as $NAME references" in out.text
    for value in secrets.values():
        assert value not in out.text and value not in template


def test_a_second_init_changes_nothing_and_keeps_the_users_comments(own, tmp_path):
    init_host(request(own, tmp_path, fix=True), BufferOutput())
    hosts = tmp_path / "inventory" / "hosts.yml"
    hosts.write_text(
        "# our servers, hand-written\n"
        + hosts.read_text().replace("      ansible_host:", "      # via the VPN\n      ansible_host:")
    )
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    snapshot = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    out = BufferOutput()
    again = init_host(request(own, tmp_path, fix=True), out)
    assert again.status == "ok" and again.message == "unchanged, unchanged, unchanged", out.text
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == snapshot
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == files


def test_an_unknown_host_key_is_refused_with_the_fix_and_nothing_is_written(own_spec, tmp_path):
    config = tmp_path / "ssh_config"
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config.write_text(
        re.sub(r"UserKnownHostsFile .*", f"UserKnownHostsFile {empty}", own_spec.ssh_config_path.read_text())
    )
    project = tmp_path / "project"
    with pytest.raises(TransportError) as err:
        init_host(dataclasses.replace(request(own_spec, project), ssh_config=config), BufferOutput())
    message = str(err.value)
    assert "host key is unknown" in message and "ssh-keyscan" in message and "--accept-new" in message
    assert not project.exists() and empty.read_text() == ""


# --------------------------------------------------------------------------- done when


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv outside the checkout with this project installed from a wheel
    (a real, non-editable install), once per test session; its bin directory."""
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    started = time.monotonic()
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)], cwd=root)
    run([sys.base_prefix + "/bin/python3", "-m", "venv", str(root / "venv")], cwd=root)
    pip = root / "venv" / "bin" / "pip"
    # pip is the one process of the suite that reaches the network: the package registry, for
    # supakong's dependencies, as `make venv` does. The socket guard stays on everywhere else.
    registry = {k: v for k, v in os.environ.items() if k not in (LOG_ENV, "PYTHONPATH")}
    run([str(pip), "install", "-q", *map(str, wheels.glob("supakong-*.whl"))], cwd=root, env=registry)
    print(f"fresh venv with supakong installed in {time.monotonic() - started:.1f} s")
    return root / "venv" / "bin"


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{argv[:3]}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def user_env() -> dict[str, str]:
    """A user's shell: no inventory setting, no key in the environment, the sandbox fence."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPAKONG_", "SUPABASE_", "PYTHON"))}
    return {**env, "SUPAKONG_HOST_ALLOWLIST": "sandbox*"}


def test_a_pip_installed_supakong_adopts_the_server_fixes_realtime_and_keeps_the_custom_service(
    own, installed, tmp_path
):
    bin_dir, project, elsewhere = installed, tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run([str(bin_dir / "python"), "-c", "import supakong; print(supakong.__file__)"], cwd=elsewhere)
    assert where.stdout.startswith(str(bin_dir.parent)), "the installed package, not the checkout"
    init = [
        str(bin_dir / "supakong"), "init", own.name, "--ssh", own.ssh_alias,
        "--ssh-config", str(own.ssh_config_path), "--dir", str(project), "--fix",
    ]  # fmt: skip
    deploy = [str(bin_dir / "supakong"), "deploy-kong", "-H", own.name]

    started = time.monotonic()
    first_init = run(init, cwd=elsewhere, env=user_env())
    init_seconds = time.monotonic() - started
    assert "fixed services[1].routes[0].preserve_host" in first_init.stdout
    first = run(deploy, cwd=project, env=user_env())
    assert "SUBSCRIBED" in first.stdout and " changed " in first.stdout, first.stdout

    live = own.kong_config_path.read_text()
    assert "name: my-api" in live and "# office and VPN only" in live and "- 10.0.0.0/8" in live
    assert "preserve_host" not in live and "anonymous" not in live and "Sec-WebSocket" not in live
    written = [own.kong_config_path, *own.kong_config_path.parent.glob(".supakong/backups/*")]
    assert len(written) == 2
    for path in written:
        for name, value in keys(own).items():
            assert value not in path.read_text(), f"{name} in clear in {path}"
    for name, value in keys(own).items():
        assert value not in first_init.stdout + first.stdout + first_init.stderr + first.stderr, name

    snapshot = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    second_init = run(init, cwd=elsewhere, env=user_env())
    assert "unchanged, unchanged, unchanged" in second_init.stdout and "--fix: nothing to fix" in second_init.stdout
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == snapshot
    second = run(deploy, cwd=project, env=user_env())
    assert "no change" in second.stdout
    print(f"init wall time (installed console script, cold): {init_seconds:.2f} s")
