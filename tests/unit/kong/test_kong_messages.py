"""Findings speak to users: public sources (Kong, Supabase, MDN, nginx), never internal
notes, and hints that name the file's own values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from supakong.kong import KongTarget, validate_kong_config

FIXTURES = Path(__file__).parent / "fixtures"
TARGETS = [KongTarget("2.8.1"), KongTarget("3.9.3"), KongTarget("3.9.3", router_flavor="expressions")]


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.yml")))
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"{t.version}-{t.router_flavor}")
def test_no_finding_cites_internal_notes(fixture: str, target: KongTarget) -> None:
    findings = validate_kong_config((FIXTURES / fixture).read_text(), target)
    assert findings, "each fixture has something to say on some target"
    for finding in findings:
        assert not re.search(r"facts\s*§|§\s*\d", finding.message + finding.hint), finding.as_line()


REALTIME = """\
_format_version: '2.1'
services:
  - name: realtime-v1-ws
    url: http://{host}:4000/socket
    routes:
      - name: realtime-v1-ws
        strip_path: true
        preserve_host: {preserve}
        paths: [/realtime/v1/]
"""


def finding_at(text: str, path: str, target: KongTarget | None = None) -> str:
    (finding,) = [f for f in validate_kong_config(text, target or KongTarget()) if f.path == path]
    return finding.message + " (hint: " + finding.hint + ")"


def test_preserve_host_hint_names_the_files_realtime_host() -> None:
    text = REALTIME.format(host="realtime-dev.stack-7", preserve="true")
    found = finding_at(text, "services[0].routes[0].preserve_host")
    assert "so Kong sends the service host realtime-dev.stack-7" in found
    assert "realtime-dev.supabase-realtime" not in found


def test_tenant_hint_renames_the_files_host_to_the_tenant() -> None:
    found = finding_at(REALTIME.format(host="rt.stack-7", preserve="false"), "services[0].url")
    assert "reach Realtime as realtime-dev.stack-7" in found
    assert "supabase/realtime: lib/realtime/database.ex" in found


def test_tenant_hint_for_a_single_label_host() -> None:
    found = finding_at(REALTIME.format(host="supabase-realtime", preserve="false"), "services[0].url")
    assert "reach Realtime as realtime-dev.supabase-realtime" in found


def test_missing_realtime_route_hint_uses_the_files_realtime_service() -> None:
    text = "_format_version: '2.1'\nservices:\n  - name: realtime-api\n    url: http://realtime-dev.stack-7:4000/api\n"
    found = finding_at(text, "services")
    assert "url http://realtime-dev.stack-7:4000/socket" in found


def test_missing_realtime_route_hint_uses_the_targets_tenant() -> None:
    found = finding_at("_format_version: '2.1'\nservices: []\n", "services", KongTarget(realtime_tenant="acme"))
    assert "url http://acme.supabase-realtime:4000/socket" in found
