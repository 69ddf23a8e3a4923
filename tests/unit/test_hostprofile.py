"""Learning the host once: which containers are which (by image and compose labels), and
the profile every later step reads, from inspect data as Docker returns it."""

from __future__ import annotations

from typing import Any

import pytest

from supakong.container import state_from_inspect
from supakong.discovery import discover, image_repository, summaries
from supakong.errors import InventoryError
from supakong.hostprofile import AWK, EVAL, NO_EXPANSION, build_profile, image_version, kong_target
from supakong.inventory import load_inventory

EVAL_ENTRYPOINT = 'eval "echo \\"$(cat ~/temp.yml)\\"" > ~/kong.yml && /docker-entrypoint.sh kong docker-start'


def compose_labels(project: str, service: str, working_dir: str = "/root/supabase/docker") -> dict[str, str]:
    return {
        "com.docker.compose.project": project,
        "com.docker.compose.service": service,
        "com.docker.compose.project.working_dir": working_dir,
        "com.docker.compose.project.config_files": f"{working_dir}/docker-compose.yml",
    }


def inspect(
    name: str,
    image: str,
    *,
    env: dict[str, str] | None = None,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    mounts: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    aliases: list[str] | None = None,
) -> dict[str, Any]:
    """``GET /containers/{name}/json`` in the shape Docker answers it."""
    return {
        "Name": f"/{name}",
        "State": {"Status": "running", "Running": True, "StartedAt": "2026-11-26T10:00:00.000000000Z"},
        "Config": {
            "Image": image,
            "Env": [f"{k}={v}" for k, v in (env or {}).items()],
            "Entrypoint": entrypoint,
            "Cmd": cmd,
            "Labels": labels or {},
        },
        "Mounts": [{"Source": src, "Destination": dst} for dst, src in (mounts or {}).items()],
        "NetworkSettings": {"Networks": {"supabase_default": {"IPAddress": "172.18.0.5", "Aliases": aliases or []}}},
    }


SUPABASE_2_8 = state_from_inspect(
    "supabase-kong",
    inspect(
        "supabase-kong",
        "kong:2.8.1",
        env={
            "KONG_DATABASE": "off",
            "KONG_DECLARATIVE_CONFIG": "/home/kong/kong.yml",
            "KONG_PLUGINS": "request-transformer,cors,key-auth,acl,basic-auth",
            "SUPABASE_ANON_KEY": "eyJanon",
            "SUPABASE_SERVICE_KEY": "eyJservice",
            "DASHBOARD_USERNAME": "supabase",
            "DASHBOARD_PASSWORD": "this_password_is_insecure",
            "KONG_SSL_CERT_KEY": "/etc/ssl/kong.key",
        },
        entrypoint=["bash", "-c", EVAL_ENTRYPOINT],
        mounts={"/home/kong/temp.yml": "/root/supabase/docker/volumes/api/kong.yml"},
        labels=compose_labels("supabase", "kong"),
    ),
)
SUPABASE_3_9 = state_from_inspect(
    "supabase-kong",
    inspect(
        "supabase-kong",
        "kong/kong:3.9.3",
        env={
            "KONG_DECLARATIVE_CONFIG": "/usr/local/kong/kong.yml",
            "KONG_ROUTER_FLAVOR": "expressions",
            "SUPABASE_ANON_KEY": "eyJanon",
        },
        entrypoint=["/bin/sh", "/home/kong/kong-entrypoint.sh"],
        mounts={
            "/home/kong/temp.yml": "/opt/supabase/volumes/api/kong.yml",
            "/home/kong/kong-entrypoint.sh": "/opt/supabase/volumes/api/kong-entrypoint.sh",
        },
        labels=compose_labels("supabase", "api-gw", "/etc/dokploy/compose/app-x1y2/code"),
    ),
)
REALTIME = state_from_inspect(
    "realtime-dev.supabase-realtime",
    inspect(
        "realtime-dev.supabase-realtime",
        "supabase/realtime:v2.34.47",
        env={"SELF_HOST_TENANT_NAME": "tenant-a", "API_JWT_SECRET": "s3cret"},
        labels=compose_labels("supabase", "realtime"),
    ),
)


def test_the_2_8_compose_gateway_expands_the_mounted_temp_yml_with_eval():
    profile = build_profile(SUPABASE_2_8, REALTIME)
    assert (profile.gateway, profile.kong_version, profile.kong_edition) == ("kong", "2.8.1", "oss")
    assert profile.expansion == EVAL and profile.entrypoint_script is None
    assert profile.template_mount == "/home/kong/temp.yml"
    assert profile.template_source == "/root/supabase/docker/volumes/api/kong.yml"
    assert profile.router_flavor == "traditional" and profile.declarative_config == "/home/kong/kong.yml"
    assert profile.kong_plugins == "request-transformer,cors,key-auth,acl,basic-auth"
    assert (profile.realtime_tenant, profile.realtime_container) == ("tenant-a", "realtime-dev.supabase-realtime")
    assert (profile.owner.kind, profile.owner.project, profile.owner.service) == ("compose", "supabase", "kong")


def test_the_profile_keeps_the_names_of_kongs_credentials_never_their_values():
    profile = build_profile(SUPABASE_2_8)
    assert profile.secret_env == {
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_KEY",
        "DASHBOARD_USERNAME",
        "DASHBOARD_PASSWORD",
    }
    assert "eyJanon" not in repr(profile) and "this_password_is_insecure" not in repr(profile)


def test_the_2026_gateway_runs_its_mounted_awk_script_and_dokploy_owns_the_stack():
    profile = build_profile(SUPABASE_3_9, containers=summaries([{"Names": ["/dokploy-traefik"], "Image": "traefik"}]))
    assert profile.expansion == AWK and profile.entrypoint_script == "/home/kong/kong-entrypoint.sh"
    assert profile.entrypoint_script_source == "/opt/supabase/volumes/api/kong-entrypoint.sh"
    assert profile.router_flavor == "expressions" and profile.router_flavor_source == "KONG_ROUTER_FLAVOR"
    assert profile.owner.kind == "dokploy"
    assert any("/etc/dokploy/compose/" in marker for marker in profile.owner.markers)
    assert any("dokploy-traefik" in marker for marker in profile.owner.markers)


def test_a_kong_reading_its_mounted_file_as_is_expands_nothing():
    kong = state_from_inspect(
        "gw",
        inspect(
            "gw",
            "kong/kong-gateway:3.4.1.0",
            env={"KONG_DECLARATIVE_CONFIG": "/kong/declarative/kong.yml"},
            mounts={"/kong/declarative/kong.yml": "/srv/kong.yml"},
        ),
    )
    profile = build_profile(kong)
    assert (profile.expansion, profile.template_mount, profile.template_source) == (
        NO_EXPANSION,
        "/kong/declarative/kong.yml",
        "/srv/kong.yml",
    )
    assert profile.kong_edition == "enterprise" and profile.router_flavor == "traditional_compatible"
    assert profile.owner.kind == "unmanaged"


def test_references_the_container_cannot_expand_are_named():
    profile = build_profile(SUPABASE_2_8)
    assert profile.missing_reference(["SUPABASE_ANON_KEY", "DASHBOARD_PASSWORD"]) is None
    assert profile.missing_reference(["SUPABASE_ANON_KEY", "SUPABASE_SECRET_KEY"]) == "SUPABASE_SECRET_KEY"
    # the 2026 entrypoint defines the LUA_* expressions itself
    assert build_profile(SUPABASE_3_9).missing_reference(["LUA_RT_WS_EXPR"]) is None
    assert profile.missing_reference(["LUA_RT_WS_EXPR"]) == "LUA_RT_WS_EXPR"


@pytest.mark.parametrize(
    ("image", "version"),
    [("kong:2.8.1", "2.8.1"), ("kong/kong:3.9.1-ubuntu", "3.9.1"), ("kong:latest", None), ("kong", None)],
)
def test_the_image_tag_names_the_version(image, version):
    assert image_version(image) == version


def test_an_untagged_image_falls_back_to_the_images_own_kong_version():
    data = inspect("k", "kong:latest", env={"KONG_VERSION": "3.9.1"})
    profile = build_profile(state_from_inspect("k", data))
    assert profile.kong_version == "3.9.1" and profile.kong_version_source == "KONG_VERSION of the image"


def _host(tmp_path, extra: str = ""):
    path = tmp_path / "inventory" / "hosts.yml"
    path.parent.mkdir(parents=True)
    path.write_text(
        "all:\n  hosts:\n    edge:\n      public_url: http://h:8000\n      kong_container: supabase-kong\n"
        "      realtime_container: rt\n      kong_config_path: /srv/k.yml\n" + extra
    )
    return load_inventory(path).host("edge")


def test_the_validators_target_comes_from_the_profile_unless_the_inventory_pins_it(tmp_path):
    target = kong_target(_host(tmp_path), build_profile(SUPABASE_3_9, REALTIME))
    assert (target.version, target.edition, target.realtime_tenant) == ("3.9.3", "oss", "tenant-a")
    pinned = kong_target(
        _host(tmp_path / "b", "      kong_version: 2.8.1\n      realtime_tenant: other\n"),
        build_profile(SUPABASE_3_9, REALTIME),
    )
    assert (pinned.version, pinned.realtime_tenant) == ("2.8.1", "other")


def test_the_target_judges_a_file_with_the_hosts_own_entrypoint_router_and_variables(tmp_path):
    modern = kong_target(_host(tmp_path), build_profile(SUPABASE_3_9, REALTIME))
    assert (modern.expansion, modern.router_flavor) == (AWK, "expressions")
    # the container's own variables, and the ones kong-entrypoint.sh sets before it substitutes
    assert {"SUPABASE_ANON_KEY", "KONG_ROUTER_FLAVOR", "LUA_RT_WS_EXPR", "WELL_KNOWN_OAUTH_PATH"} <= set(
        modern.env_names
    )
    assert "SUPABASE_PUBLISHABLE_KEY" not in modern.env_names  # this container does not hold it
    legacy = kong_target(_host(tmp_path / "b"), build_profile(SUPABASE_2_8, REALTIME))
    assert (legacy.expansion, legacy.router_flavor) == (EVAL, "traditional")
    assert "LUA_RT_WS_EXPR" not in legacy.env_names and "DASHBOARD_PASSWORD" in legacy.env_names


def test_a_host_without_kong_and_no_pinned_version_is_one_line(tmp_path):
    with pytest.raises(InventoryError) as err:
        kong_target(_host(tmp_path), build_profile(None))
    assert "supabase-kong does not exist and kong_version is not set" in str(err.value)


# ------------------------------------------------------------------------------- discovery


def row(name: str, image: str, project: str | None = None, service: str | None = None, state: str = "running"):
    labels = compose_labels(project, service) if project and service else {}
    return {"Names": [f"/{name}"], "Image": image, "State": state, "Labels": labels}


def test_containers_are_found_by_image_and_compose_labels_not_by_name():
    found = discover(
        summaries(
            [
                row("gateway", "docker.io/library/kong:2.8.1", "supabase", "kong"),
                row("rt", "supabase/realtime:v2.34.47", "supabase", "realtime"),
                row("pg", "supabase/postgres:15.8.1.060", "supabase", "db"),
                row("my-own-kong-lookalike", "nginx:1.27"),
                row("custom", "registry.example.com:5000/me/realtime-fork:1", "supabase", "realtime-2"),
            ]
        )
    )
    assert (found.kong.name, found.realtime.name, found.db.name, found.envoy) == ("gateway", "rt", "pg", None)
    assert found.project == "supabase"


def test_a_retagged_image_is_still_found_by_its_compose_service():
    found = discover(summaries([row("x", "myorg/gateway:7", "stack", "kong")]))
    assert found.kong is not None and found.kong.name == "x"


def test_two_stacks_on_one_host_need_the_project_named():
    rows = [
        row("a-kong", "kong:2.8.1", "a", "kong"),
        row("b-kong", "kong:2.8.1", "b", "kong"),
        row("a-rt", "supabase/realtime:v2", "a", "realtime"),
    ]
    with pytest.raises(InventoryError) as err:
        discover(summaries(rows), host="edge")
    assert "several kong containers" in str(err.value) and "a-kong" in str(err.value) and "--project" in str(err.value)
    found = discover(summaries(rows), project="b")
    assert found.kong.name == "b-kong" and found.realtime is None


def test_a_running_kong_beats_a_stopped_leftover():
    rows = [row("old", "kong:2.8.1", "s", "kong", state="exited"), row("new", "kong/kong:3.9.1", "s", "kong")]
    assert discover(summaries(rows)).kong.name == "new"


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("kong", "kong"),
        ("docker.io/library/kong:2.8.1", "kong"),
        ("kong/kong-gateway:3.9@sha256:abc", "kong/kong-gateway"),
        ("localhost:5000/supabase/realtime:v2", "supabase/realtime"),
        ("envoyproxy/envoy:v1.31-latest", "envoyproxy/envoy"),
    ],
)
def test_image_repository_drops_registry_library_tag_and_digest(image, repository):
    assert image_repository(image) == repository
