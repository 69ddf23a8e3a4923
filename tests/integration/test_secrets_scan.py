"""Secrets never print: every task runs against the sandbox with distinctive secret values,
and none of them (nor anything shaped like a JWT) appears in stdout, stderr, the --report
files, the audit log on the host, the backups' names or a traceback. Files holding secrets
keep tight modes: the config and its backups no wider than 0640, `render-kong --out` 0600."""

from __future__ import annotations

import json
import os
import re
import secrets as pysecrets
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import pytest
import yaml

from supakong.sandbox import sandbox_reset
from supakong.sandbox.inventory import write_sandbox_inventory
from supakong.secrets import parse_env_file

REPO = Path(__file__).resolve().parents[2]
FAB = Path(sys.executable).parent / "fab"
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


@dataclass
class Scan:
    """One run of every task, and everything it left behind."""

    spec: object
    inventory: Path
    tmp: Path
    secrets: dict[str, str]
    runs: list[tuple[str, subprocess.CompletedProcess[str]]] = field(default_factory=list)

    def fab(self, label: str, *args: str, code: int = 0, env: dict[str, str] | None = None) -> str:
        environ = {
            **os.environ,
            "SUPAKONG_HOST_ALLOWLIST": "sandbox*",
            "SUPAKONG_INVENTORY": str(self.inventory),
            **(env or {}),
        }
        proc = subprocess.run([str(FAB), *args], cwd=REPO, env=environ, capture_output=True, text=True, timeout=300)
        self.runs.append((label, proc))
        assert proc.returncode == code, f"{label}: exit {proc.returncode}: {self.redact(proc.stdout + proc.stderr)}"
        return proc.stdout + proc.stderr

    def redact(self, text: str) -> str:
        """``text`` with the secrets named instead of shown (for failure messages), its end."""
        for name, value in self.secrets.items():
            text = text.replace(value, f"<{name}>")
        return JWT_SHAPE.sub("<JWT>", text)[-1500:]

    @property
    def host(self) -> str:
        return self.spec.name  # type: ignore[attr-defined]


def signed(claims: dict[str, object], key: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": "supakong-scan", "iat": now, "exp": now + 3600, **claims}, key, algorithm="HS256")


@pytest.fixture(scope="module")
def scan(sandbox_spec, tmp_path_factory) -> Scan:
    """Distinctive secrets for the sandbox host (keys signed with the sandbox's JWT secret, so
    they work), an inventory that names them, then every task run once; the sandbox is reset
    afterwards (its config then holds these keys)."""
    tmp = tmp_path_factory.mktemp("scan")
    jwt_secret = parse_env_file(sandbox_spec.secrets_path.read_text(), "sandbox")["JWT_SECRET"]
    values = {
        "SUPABASE_ANON_KEY": signed({"role": "anon", "scan": "ScanAnonMarker"}, jwt_secret),
        "SUPABASE_SERVICE_KEY": signed({"role": "service_role", "scan": "ScanServiceMarker"}, jwt_secret),
        "JWT_SECRET": jwt_secret,
        "DASHBOARD_PASSWORD": f"Scan-Dashboard-Pw-{pysecrets.token_hex(6)}",
        "BAD_ANON_KEY": signed({"role": "anon", "scan": "ScanWrongKey"}, "not-the-sandbox-secret-" + "x" * 16),
    }
    env_file = tmp / "scan.env"
    env_file.touch(mode=0o600)
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items() if k != "BAD_ANON_KEY"))
    inventory = write_sandbox_inventory(tmp / "inventory" / "hosts.yml", [sandbox_spec])
    doc = yaml.safe_load(inventory.read_text())
    doc["all"]["children"]["sandboxes"]["hosts"][sandbox_spec.name]["secrets_env_file"] = str(env_file)
    # inline: the keys are written into the file, the worst case for a leak
    doc["all"]["children"]["sandboxes"]["hosts"][sandbox_spec.name]["kong_secrets"] = "inline"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))

    sandbox_reset(sandbox_spec)
    s = Scan(sandbox_spec, inventory, tmp, values)
    try:
        run_every_task(s)
        yield s
    finally:
        sandbox_reset(sandbox_spec)


def run_every_task(s: Scan) -> None:
    h, tmp = s.host, s.tmp
    rendered = tmp / "rendered.yml"
    s.fab("hosts", "hosts")
    s.fab("render-kong", "render-kong", "-H", h)
    s.fab("render-kong --out", "render-kong", "-H", h, "--out", str(rendered))
    s.fab("check-kong --file", "check-kong", "--file", str(rendered))
    s.fab("check-kong --file --json", "check-kong", "--file", str(rendered), "--json")
    s.fab("check-kong -H", "check-kong", "-H", h)
    s.fab("check-kong -H --json", "check-kong", "-H", h, "--json")
    s.fab("deploy-kong --check --diff", "deploy-kong", "-H", h, "--check", "--diff", code=2)
    s.fab("deploy-kong --diff (a change)", "deploy-kong", "-H", h, "--diff", "--report", str(tmp / "deploy.json"))
    s.fab("deploy-kong (no change)", "deploy-kong", "-H", h, "--report", str(tmp / "noop.json"))
    # the live file now holds the keys and the dashboard password in clear, which Kong's
    # environment does not hold (they are the scan's): init keeps them, never prints them
    spec = s.spec
    adopt = ["--ssh", spec.ssh_alias, "--ssh-config", str(spec.ssh_config_path), "--dir", str(tmp / "adopted")]  # type: ignore[attr-defined]
    s.fab("init --fix", "init", h, *adopt, "--fix")
    s.fab("verify-realtime", "verify-realtime", "-H", h, "--report", str(tmp / "verify.json"))
    s.fab("verify-realtime --json", "verify-realtime", "-H", h, "--json")
    s.fab("doctor", "doctor", "-H", h, "--report", str(tmp / "doctor.json"))
    s.fab(
        "verify-realtime (wrong key)",
        "verify-realtime",
        "-H",
        h,
        "--report",
        str(tmp / "verify-failed.json"),
        code=1,
        env={"SUPABASE_ANON_KEY": s.secrets["BAD_ANON_KEY"]},
    )
    broken = tmp / "broken.yml"
    broken.write_text(
        rendered.read_text().replace(
            "      - name: realtime-v1-ws\n",
            "      - name: realtime-v1-ws\n        protocols: [http, https, ws, wss]\n",
        )
    )
    assert broken.read_text() != rendered.read_text()
    s.fab(
        "deploy-kong --file broken --skip-validate (Kong's /config refuses it)",
        "deploy-kong",
        "-H",
        h,
        "--file",
        str(broken),
        "--skip-validate",
        "--diff",
        "--report",
        str(tmp / "refused.json"),
        code=1,
    )
    s.fab(
        "deploy-kong --file broken --skip-validate --restart (rolled back)",
        "deploy-kong",
        "-H",
        h,
        "--file",
        str(broken),
        "--skip-validate",
        "--restart",
        "--diff",
        "--report",
        str(tmp / "rolled-back.json"),
        code=1,
    )
    s.fab("logs", "logs", "-H", h, "--since", "10m")
    s.fab("logs --grep", "logs", "-H", h, "--since", "10m", "--grep", "apikey|realtime|key")
    s.fab("backups", "backups", "-H", h)
    s.fab("rollback-kong", "rollback-kong", "-H", h)
    s.fab("redeploy", "redeploy", "--log", str(tmp / "redeploy.log"))
    s.fab("schedule-redeploy --print", "schedule-redeploy", "--print", "--log", str(tmp / "redeploy.log"))
    s.fab("audit", "audit", "-H", h)
    s.fab("audit --json", "audit", "-H", h, "--json")
    induced = induce_error(tmp / "site", tmp / "scan.env", "supakong.deploy", "look_held")
    s.fab("deploy-kong, internal error, SUPAKONG_DEBUG=1", "deploy-kong", "-H", h, code=1, env=induced)


#: A sitecustomize that makes ``module.attribute`` raise an unexpected exception whose
#: message carries every secret, as a bug deep in a library might.
INDUCED_ERROR = """
import {module}

def _broken(*args, **kwargs):
    values = dict(line.split("=", 1) for line in open({env_file!r}).read().split())
    raise RuntimeError("induced internal error: " + " ".join(values.values()))

{module}.{attribute} = _broken
"""


def induce_error(directory: Path, env_file: Path, module: str, attribute: str) -> dict[str, str]:
    """The environment of a run whose ``module.attribute`` fails unexpectedly, traceback on."""
    directory.mkdir()
    code = INDUCED_ERROR.format(module=module, attribute=attribute, env_file=str(env_file))
    (directory / "sitecustomize.py").write_text(code)
    return {"SUPAKONG_DEBUG": "1", "PYTHONPATH": str(directory)}


def leaks(text: str, s: Scan) -> list[str]:
    found = [name for name, value in s.secrets.items() if value in text]
    return found + [f"JWT-shaped {m[:12]}…" for m in JWT_SHAPE.findall(text)]


def test_every_task_ran_through_its_success_and_failure_paths(scan):
    tasks = {proc.args[1] for _, proc in scan.runs}
    listed = subprocess.run([str(FAB), "--list"], cwd=REPO, capture_output=True, text=True).stdout
    every = set(re.findall(r"^  (\S+)", listed, re.MULTILINE))
    assert every - {"sandbox-up", "sandbox-down", "sandbox-reset"} <= tasks, "a task is not scanned"
    rolled_back = json.loads((scan.tmp / "rolled-back.json").read_text())
    assert rolled_back["status"] == "rolled_back"
    refused = json.loads((scan.tmp / "refused.json").read_text())
    assert refused["status"] == "failed"
    assert "refuses the new config" in refused["hosts"][scan.host]["message"]
    induced = scan.runs[-1][1]
    assert "Traceback" in induced.stdout and "induced internal error" in induced.stdout, "the traceback printed"


def test_a_template_init_had_to_keep_keys_in_is_private(scan):
    template = scan.tmp / "adopted" / "templates" / scan.host / "kong.yml.j2"
    assert scan.secrets["DASHBOARD_PASSWORD"] in template.read_text()
    assert stat.S_IMODE(template.stat().st_mode) == 0o600


def test_no_secret_in_any_output(scan):
    for label, proc in scan.runs:
        found = {"stdout": leaks(proc.stdout, scan), "stderr": leaks(proc.stderr, scan)}
        assert found == {"stdout": [], "stderr": []}, label


def test_no_secret_in_the_json_reports_or_the_redeploy_log(scan):
    reports = [*sorted(scan.tmp.glob("*.json")), scan.tmp / "redeploy.log"]
    assert len(reports) == 8
    for report in reports:
        found = leaks(report.read_text(), scan)
        assert found == [], report.name


def test_no_secret_in_the_audit_log_or_the_backups_names(scan):
    state = scan.spec.kong_config_path.parent / ".supakong"
    audit = (state / "audit.log").read_text()
    assert len(audit.splitlines()) >= 4
    found = leaks(audit, scan)
    assert found == []
    names = " ".join(p.name for p in (state / "backups").iterdir())
    found = leaks(names, scan)
    assert names and found == []


def test_files_holding_secrets_keep_tight_modes(scan):
    config = scan.spec.kong_config_path
    assert scan.secrets["SUPABASE_ANON_KEY"] in config.read_text(), "the host's file is the real one"
    backups = list((config.parent / ".supakong" / "backups").iterdir())
    for path in [config, *backups]:
        assert stat.S_IMODE(path.stat().st_mode) & ~0o640 == 0, f"{path}: {oct(path.stat().st_mode)}"
    rendered = scan.tmp / "rendered.yml"
    assert stat.S_IMODE(rendered.stat().st_mode) == 0o600
    found = set(leaks(rendered.read_text(), scan))
    assert {"SUPABASE_ANON_KEY", "DASHBOARD_PASSWORD"} <= found, "the scan sees secrets where they belong"


def test_an_internal_error_outside_a_fleet_task_is_masked_too(scan):
    induced = induce_error(scan.tmp / "site-render", scan.tmp / "scan.env", "supakong.render", "render_kong_config")
    output = scan.fab("render-kong, internal error", "render-kong", "-H", scan.host, code=1, env=induced)
    found = leaks(output, scan)
    assert "induced internal error" in output and found == []
