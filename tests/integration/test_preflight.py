"""Preflight: the running Kong parses the new file (after the entrypoint's $VAR expansion)
before anything is replaced; what it refuses never reaches the volume."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import supakong.apply.reload
import supakong.deploy
import supakong.preflight
from supakong.deploy import DeployOptions, deploy_host
from supakong.errors import ValidationError
from supakong.render import render_kong_config
from supakong.report import BufferOutput
from supakong.sandbox.stack import docker_client
from supakong.transport import HostConnection


@pytest.mark.parametrize(
    ("restart", "verdict"), [(True, "kong config parse"), (False, "refuses the new config")], ids=["restart", "reload"]
)
def test_a_file_the_offline_rules_accept_but_this_kong_refuses_is_stopped_by_preflight(
    fresh_sandbox, host, secrets, out, tmp_path, restart, verdict
):
    # Before a restart the preflight's `kong config parse` refuses it; a reload's POST /config
    # refuses it itself (no separate parse): either way nothing changes.
    # The inventory claims every bundled plugin is enabled; the container only enables
    # Supabase's list. The offline validator trusts the inventory, Kong does not.
    pinned = dataclasses.replace(host, kong_version="2.8.1", kong_plugins="bundled")
    text = render_kong_config(host, secrets).replace(
        "      - name: cors\n      - name: key-auth\n        config:\n          hide_credentials: true\n",
        "      - name: cors\n      - name: rate-limiting\n        config:\n          minute: 100\n"
        "      - name: key-auth\n        config:\n          hide_credentials: true\n",
        1,
    )
    assert "rate-limiting" in text
    candidate = tmp_path / "with-rate-limiting.yml"
    candidate.write_text(text)
    config = fresh_sandbox.kong_config_path
    before = hashlib.sha256(config.read_bytes()).hexdigest()

    with pytest.raises(ValidationError) as err:
        deploy_host(pinned, DeployOptions(file=candidate, restart=restart), out)

    assert verdict in str(err.value) and "rate-limiting" in str(err.value)
    assert "nothing was changed" in str(err.value)
    assert hashlib.sha256(config.read_bytes()).hexdigest() == before


def test_preflight_expands_placeholders_like_the_entrypoint(fresh_sandbox, host, secrets, out, tmp_path):
    # A hand-edited file in Supabase's style: keys as $VARS, expanded from the container's env.
    text = render_kong_config(host, secrets)
    text = text.replace(f"'{secrets.anon_key}'", "$SUPABASE_ANON_KEY").replace(
        f"'{secrets.service_key}'", "$SUPABASE_SERVICE_KEY"
    )
    candidate = tmp_path / "placeholders.yml"
    candidate.write_text(text)
    result = deploy_host(host, DeployOptions(file=candidate, restart=True), out)
    assert "preflight: kong config parse: parse successful" in out.text
    assert result.verify_state == "SUBSCRIBED"


def test_preflight_leaves_no_copy_of_the_file_in_the_container_whether_kong_accepts_it_or_not(
    fresh_sandbox, host, secrets, out, tmp_path
):
    refused = tmp_path / "refused.yml"
    refused.write_text(render_kong_config(host, secrets).replace("- name: cors\n", "- name: rate-limiting\n", 1))
    with pytest.raises(ValidationError, match="kong config parse"):
        deploy_host(dataclasses.replace(host, kong_plugins="bundled"), DeployOptions(file=refused, restart=True), out)
    deploy_host(host, DeployOptions(verify=False, restart=True), out)
    assert "preflight: kong config parse: parse successful" in out.text

    with HostConnection(host) as conn:
        code, listing = conn.engine().exec(host.kong_container, ["ls", "-a", "/tmp"])
    assert code == 0
    assert "supakong-preflight" not in listing.decode()


# -- when Kong cannot give its verdict -------------------------------------------------------


def variant_of(host, secrets, tmp_path) -> Path:
    """The rendered file plus a unique comment: a change to deploy, whatever is there now."""
    variant = tmp_path / "variant.yml"
    variant.write_text(render_kong_config(host, secrets) + f"# variant {time.time_ns()}\n")
    return variant


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def broken_kong(spec, how: str) -> Iterator[str]:
    """Kong running, but unable to run `kong config parse` for us; what the deploy says why."""
    client = docker_client(spec)
    name = spec.kong_container
    run = lambda script: client.exec_start(client.exec_create(name, ["sh", "-c", script])["Id"])  # noqa: E731
    try:
        if how == "paused":  # Docker refuses an exec into a paused container
            client.pause(name)
            yield f"cannot exec into {name}"
        elif how == "no kong CLI":  # an image without the CLI: the exec's shell exits 127
            run('mv "$(command -v kong)" /bin/kong.away')
            yield f"no kong CLI in {name}"
        else:  # no room for the file: its scratch directory cannot be made (under a file, as
            # on a full or read-only /tmp; replacing /tmp itself would also break the sandbox's
            # bind mounts of a checkout under /tmp when Kong restarts)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(supakong.preflight, "WORKDIR", "/etc/hostname/supakong-preflight")
                patch.setattr(supakong.apply.reload, "WORKDIR", "/etc/hostname/supakong-reload")
                yield f"cannot write the file into {name}"
    finally:
        if how == "paused":
            client.unpause(name)
        elif how == "no kong CLI":
            run("mv /bin/kong.away /bin/kong")
        client.close()


@pytest.mark.parametrize("how", ["paused", "no kong CLI", "no room for the file"])
def test_without_kongs_verdict_nothing_is_deployed(sandbox_spec, host, secrets, tmp_path, how):
    variant = variant_of(host, secrets, tmp_path)
    before = sha256(sandbox_spec.kong_config_path)
    out = BufferOutput()
    with broken_kong(sandbox_spec, how) as why, pytest.raises(ValidationError) as err:
        deploy_host(host, DeployOptions(file=variant), out)
    message = str(err.value)
    assert message.startswith(f"{host.name}: Kong could not check the new file ({why}")
    assert "nothing was changed" in message and "--skip-preflight" in message and "\n" not in message
    assert sha256(sandbox_spec.kong_config_path) == before
    assert "replaced" not in out.text and "restarted" not in out.text


def test_skip_preflight_deploys_on_the_offline_verdict_when_kong_cannot_check(
    sandbox_spec, host, secrets, tmp_path, monkeypatch
):
    variant = variant_of(host, secrets, tmp_path)
    out = BufferOutput()
    with broken_kong(sandbox_spec, "no room for the file"):
        monkeypatch.setattr(supakong.deploy, "preflight_parse", lambda *a: pytest.fail("the preflight ran"))
        result = deploy_host(host, DeployOptions(file=variant, skip_preflight=True), out)
    assert result.status == "changed" and result.verify_state == "SUBSCRIBED", out.text
    assert "! --skip-preflight: NOT asking the running Kong to parse the file first" in out.text
    assert sha256(sandbox_spec.kong_config_path) == sha256(variant)


def test_a_stopped_kong_is_started_with_the_file_the_offline_validator_passed(sandbox_spec, host, secrets, tmp_path):
    variant = variant_of(host, secrets, tmp_path)
    client = docker_client(sandbox_spec)
    try:
        client.stop(sandbox_spec.kong_container, timeout=5)
        out = BufferOutput()
        result = deploy_host(host, DeployOptions(file=variant), out)
        assert client.inspect_container(sandbox_spec.kong_container)["State"]["Running"]
    finally:
        client.start(sandbox_spec.kong_container)  # a no-op when the deploy started it
        client.close()
    assert result.status == "changed" and result.verify_state == "SUBSCRIBED", out.text
    assert f"! preflight skipped: {host.kong_container} is exited" in out.text
    assert "the offline validator passed the file" in out.text
    assert sha256(sandbox_spec.kong_config_path) == sha256(variant)
