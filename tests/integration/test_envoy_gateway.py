"""A stack whose API gateway is Envoy (self-hosted Supabase's default since 0.8.0): init,
doctor and deploy-kong say that kong.yml is not used there and how to switch to Kong, and
nothing is deployed. Played on the modern sandbox with its Kong removed and an Envoy
container (service api-gw, container <name>-supabase-envoy) in its place."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sandbox_specs import related_spec
from test_diagnosis import check_line

from supakong.adopt.survey import take_survey
from supakong.deploy import DeployOptions, deploy_host
from supakong.doctor import doctor_host
from supakong.errors import InventoryError
from supakong.inventory import HostConfig, load_inventory
from supakong.report import BufferOutput
from supakong.sandbox import SandboxSpec, sandbox_up
from supakong.sandbox.inventory import write_sandbox_inventory
from supakong.sandbox.spec import compose_labels
from supakong.sandbox.stack import busybox_tarball, docker_client
from supakong.transport import HostConnection
from supakong.verify_run import VerifyOptions

ENVOY_IMAGE = "envoyproxy/envoy:v1.34.1"


@pytest.fixture(scope="module")
def envoy_stack(sandbox_spec: SandboxSpec, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostConfig]:
    spec = sandbox_up(related_spec("modern", 5))
    path = write_sandbox_inventory(tmp_path_factory.mktemp("envoy") / "hosts.yml", [spec])
    envoy = f"{spec.name}-supabase-envoy"
    client = docker_client(spec)
    try:
        if ENVOY_IMAGE not in {t for image in client.images() for t in image.get("RepoTags") or []}:
            repository, tag = ENVOY_IMAGE.rsplit(":", 1)
            client.import_image_from_data(busybox_tarball(), repository=repository, tag=tag, changes=['CMD ["sh"]'])
        client.remove_container(spec.kong_container, force=True)
        client.create_container(
            ENVOY_IMAGE, command=["sleep", "3600"], name=envoy, labels=compose_labels(spec, "api-gw")
        )
        client.start(envoy)
        yield load_inventory(path).host(spec.name)
    finally:
        client.remove_container(envoy, force=True)
        client.close()
        sandbox_up(spec)  # Kong again, as the other tests of the modern sandbox expect


def test_doctor_says_kong_yml_is_not_used_and_how_to_switch(envoy_stack):
    out = BufferOutput()
    result = doctor_host(envoy_stack, VerifyOptions(), out)
    line = check_line(out.text, "kong container")
    assert result.status == "failed"
    assert f"the API gateway is Envoy ({envoy_stack.name}-supabase-envoy, {ENVOY_IMAGE})" in line
    assert "kong.yml is not used on this host" in line and "docker-compose.kong.yml" in line


def test_deploy_refuses_and_writes_nothing(envoy_stack):
    spec = related_spec("modern", 5)
    before = hashlib.sha256(spec.kong_config_path.read_bytes()).hexdigest()
    with pytest.raises(InventoryError) as err:
        deploy_host(envoy_stack, DeployOptions(), BufferOutput())
    assert "kong.yml is not used on this host" in str(err.value) and "docker-compose.kong.yml" in str(err.value)
    assert hashlib.sha256(spec.kong_config_path.read_bytes()).hexdigest() == before


def test_init_recognises_the_envoy_gateway(envoy_stack):
    with HostConnection(envoy_stack) as conn, pytest.raises(InventoryError) as err:
        take_survey(conn)
    assert "the API gateway is Envoy" in str(err.value) and "sh run.sh config add kong" in str(err.value)
