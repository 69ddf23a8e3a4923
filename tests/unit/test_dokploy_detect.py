"""Which Kong containers are Dokploy's, where their file lives in Dokploy's layout, and how
deploy-kong may write it (supakong.dokploy.detect and .policy, pure)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from supakong.dokploy import CODE, COMPOSE, FILES, STACK, detect
from supakong.dokploy.policy import API, DIRECT, PLAIN, DokployRefusal, api_access, choose_writer
from supakong.inventory import load_inventory

APP = "myproj-supabase-ab12cd"
BASE = f"/etc/dokploy/compose/{APP}"
COMPOSE_LABELS = {
    "com.docker.compose.project": APP,
    "com.docker.compose.service": "kong",
    "com.docker.compose.project.working_dir": f"{BASE}/code",
}
REPO_INVENTORY = Path(__file__).resolve().parents[2] / "inventory" / "hosts.yml"


def test_a_compose_service_with_a_file_mount() -> None:
    stack = detect(COMPOSE_LABELS, f"{BASE}/files/volumes/api/kong.yml")
    assert stack is not None
    assert (stack.app_name, stack.mode, stack.location, stack.file_path) == (
        APP,
        COMPOSE,
        FILES,
        "/volumes/api/kong.yml",
    )
    assert (
        stack.describe() == f"Dokploy-managed: appName {APP}, compose mode, file mount /volumes/api/kong.yml (files/)"
    )


def test_a_file_in_code_is_seen_as_such() -> None:
    stack = detect(COMPOSE_LABELS, f"{BASE}/code/volumes/api/kong.yml")
    assert stack is not None and stack.location == CODE and stack.file_path is None


def test_a_swarm_stack_is_dokploys_when_its_mount_is_under_its_compose_dir() -> None:
    labels = {"com.docker.stack.namespace": APP, "com.docker.swarm.service.name": f"{APP}_kong"}
    stack = detect(labels, f"{BASE}/files/volumes/api/kong.yml")
    assert stack is not None and stack.mode == STACK and stack.swarm_service == f"{APP}_kong"
    assert detect(labels, "/srv/other/kong.yml") is None  # a stack Dokploy did not deploy


def test_a_plain_compose_project_is_not_dokploys() -> None:
    labels = {**COMPOSE_LABELS, "com.docker.compose.project.working_dir": "/root/supabase/docker"}
    assert detect(labels, "/root/supabase/docker/volumes/api/kong.yml") is None


@pytest.fixture()
def dokploy_host():  # type: ignore[no-untyped-def]
    return load_inventory(REPO_INVENTORY).host("sandbox-dokploy")


def test_the_api_is_chosen_when_the_url_and_the_key_are_there(dokploy_host) -> None:  # type: ignore[no-untyped-def]
    stack = detect(COMPOSE_LABELS, f"{BASE}/files/volumes/api/kong.yml")
    assert choose_writer(stack, dokploy_host, direct=False, environ={"DOKPLOY_API_KEY": "k"}) == API
    access = api_access(dokploy_host, {"DOKPLOY_API_KEY": "the-key"})
    assert access is not None and "the-key" not in repr(access)


def test_without_a_key_a_file_mount_is_refused_unless_direct(dokploy_host) -> None:  # type: ignore[no-untyped-def]
    stack = detect(COMPOSE_LABELS, f"{BASE}/files/volumes/api/kong.yml")
    with pytest.raises(DokployRefusal) as refused:
        choose_writer(stack, dokploy_host, direct=False, environ={})
    message = str(refused.value)
    assert "writes it back the next time anyone saves that mount" in message
    assert "DOKPLOY_API_KEY" in message and "--direct" in message and "\n" not in message
    assert choose_writer(stack, dokploy_host, direct=True, environ={}) == DIRECT
    no_url = dataclasses.replace(dokploy_host, dokploy_url=None)
    with pytest.raises(DokployRefusal, match="dokploy_url is not set"):
        choose_writer(stack, no_url, direct=False, environ={"DOKPLOY_API_KEY": "k"})


def test_a_file_in_code_is_refused_even_with_direct(dokploy_host) -> None:  # type: ignore[no-untyped-def]
    stack = detect(COMPOSE_LABELS, f"{BASE}/code/kong.yml")
    for direct in (False, True):
        with pytest.raises(DokployRefusal, match="change the file in the git repository"):
            choose_writer(stack, dokploy_host, direct=direct, environ={"DOKPLOY_API_KEY": "k"})


def test_a_stack_that_is_not_dokploys_is_written_as_always(dokploy_host) -> None:  # type: ignore[no-untyped-def]
    assert choose_writer(None, dokploy_host, direct=False, environ={}) == PLAIN


def test_the_api_key_is_masked_wherever_it_might_appear(dokploy_host) -> None:  # type: ignore[no-untyped-def]
    from supakong.secrets import mask

    api_access(dokploy_host, {"DOKPLOY_API_KEY": "dk-0123456789abcdef-secret"})
    assert "dk-0123456789abcdef-secret" not in mask("x-api-key: dk-0123456789abcdef-secret")
