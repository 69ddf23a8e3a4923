"""KongTarget: versions, editions, enabled plugins, and images from the inventory."""

from __future__ import annotations

import pytest

from supakong.kong import SUPABASE_PLUGINS, KongTarget
from supakong.kong.target import SUPABASE_PLUGINS_3X

VERSION_CASES = [
    pytest.param("2.8.1", (2, 8, 1), id="kong-2.8.1"),
    pytest.param("3.9.1", (3, 9, 1), id="kong-3.9.1"),
    pytest.param("3.4", (3, 4, 0), id="minor-only"),
    pytest.param("3.9.1.0", (3, 9, 1), id="enterprise-four-part-version"),
    pytest.param("v3.5.0", (3, 5, 0), id="leading-v"),
    pytest.param("3.9.1-ubuntu", (3, 9, 1), id="image-suffix"),
    pytest.param("3.11.0", (3, 11, 0), id="newer-3.x-uses-3.9-rules"),
]


@pytest.mark.parametrize(("version", "release"), VERSION_CASES)
def test_versions_parse_leniently(version: str, release: tuple[int, int, int]) -> None:
    assert KongTarget(version).release == release


BAD_VERSIONS = [
    pytest.param("4.0.0", "major version 4", id="unknown-major"),
    pytest.param("1.5.0", "major version 1", id="kong-1"),
    pytest.param("2.7.0", "only 2.8.x", id="older-2.x"),
    pytest.param("latest", "cannot read", id="not-a-version"),
    pytest.param("3", "cannot read", id="major-only"),
]


@pytest.mark.parametrize(("version", "fragment"), BAD_VERSIONS)
def test_unsupported_versions_raise_value_error(version: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        KongTarget(version)


def test_unknown_edition_raises_value_error() -> None:
    with pytest.raises(ValueError, match="'oss' or 'enterprise'"):
        KongTarget("3.9.1", "free")


IMAGE_CASES = [
    pytest.param("kong:2.8.1", "2.8.1", "oss", id="docker-hub-kong"),
    pytest.param("kong/kong:3.9.1", "3.9.1", "oss", id="kong-org-image"),
    pytest.param("kong/kong-gateway:3.9.1.0", "3.9.1.0", "enterprise", id="kong-gateway"),
    pytest.param("docker.io/library/kong:2.8.1-alpine", "2.8.1", "oss", id="registry-and-suffix"),
    pytest.param("registry.local:5000/kong/kong:3.4.2", "3.4.2", "oss", id="registry-with-port"),
    pytest.param("kong:2.8.1@sha256:" + "a" * 64, "2.8.1", "oss", id="tag-and-digest"),
]


@pytest.mark.parametrize(("image", "version", "edition"), IMAGE_CASES)
def test_target_from_image(image: str, version: str, edition: str) -> None:
    target = KongTarget.from_image(image)
    assert (target.version, target.edition) == (version, edition)
    assert target.plugins == (SUPABASE_PLUGINS_3X if version.startswith("3.") else SUPABASE_PLUGINS)


UNPINNED_IMAGES = [
    pytest.param("kong:latest", id="latest"),
    pytest.param("kong", id="no-tag"),
    pytest.param("kong@sha256:" + "b" * 64, id="digest-only"),
    pytest.param("kong:3", id="floating-major"),
    pytest.param("kong/kong:ubuntu", id="distro-tag"),
]


@pytest.mark.parametrize("image", UNPINNED_IMAGES)
def test_unpinned_images_ask_to_pin_kong_version(image: str) -> None:
    with pytest.raises(ValueError, match="pin kong_version in the inventory"):
        KongTarget.from_image(image)


PLUGIN_ENV_CASES = [
    pytest.param("cors, key-auth ,acl", {"cors", "key-auth", "acl"}, id="comma-list"),
    pytest.param("", "bundled", id="empty-means-kong-default-bundled"),
    pytest.param("bundled,post-function", "bundled", id="bundled-plus-extra"),
    pytest.param("off", set(), id="off-disables-all"),
]


@pytest.mark.parametrize(("env", "expected"), PLUGIN_ENV_CASES)
def test_kong_plugins_env(env: str, expected: set[str] | str) -> None:
    target = KongTarget.from_image("kong:2.8.1", kong_plugins_env=env)
    if expected == "bundled":
        assert {"rate-limiting", "cors", "post-function"} <= target.enabled_plugins
    else:
        assert target.enabled_plugins == expected


def test_bundled_plugins_follow_the_version() -> None:
    assert "opentelemetry" not in KongTarget("2.8.1", plugins=("bundled",)).enabled_plugins
    assert "opentelemetry" in KongTarget("3.0", plugins=("bundled",)).enabled_plugins


def test_realtime_tenant_is_passed_through() -> None:
    assert KongTarget.from_image("kong:2.8.1", realtime_tenant="acme").realtime_tenant == "acme"
