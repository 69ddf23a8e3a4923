"""The ways of doing the benchmark's job, and their inputs, generated from the same sandbox
fleet: supakong (``fab deploy-kong``, which loads a change into the running Kong, and the same
with ``--restart``), Ansible (``ansible-playbook``), pyinfra and the hand-written paramiko loop.

The job is the same for all: render ``templates/kong-simple.yml.j2`` for each host and put it
at ``kong_config_path``; make Kong run it if (and only if) the file changed: supakong through
Kong's Admin API, the others (and ``supakong-restart``) by restarting the container. The
template is supakong's own; for Ansible and pyinfra its one custom filter (``yaml_str``) is
spelled with standard Jinja filters and its whitespace settings are passed explicitly, and the
benchmark checks that every tool writes byte-identical files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sandboxes import CHEAP_HEALTHCHECK

from supakong.inventory import HostConfig, load_inventory
from supakong.render import render_kong_config, template_context
from supakong.sandbox.inventory import TEMPLATE, write_sandbox_inventory
from supakong.sandbox.spec import CLIENT_KEY, SSH_USER, SandboxSpec
from supakong.secrets import load_secrets

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / "work"
VENVS = {"ansible": (BENCH / ".venv-ansible", "ansible-core"), "pyinfra": (BENCH / ".venv-pyinfra", "pyinfra")}
TOOLS = ("supakong", "supakong-restart", "ansible", "pyinfra", "paramiko", "paramiko+health")
_YAML_STR = re.compile(r"\{\{\s*(.+?)\s*\|\s*yaml_str\s*\}\}")


@dataclass(frozen=True)
class Command:
    """How to run one tool over N hosts."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


def ensure_venvs(tools: Sequence[str] = TOOLS) -> dict[str, str]:
    """Create bench/.venv-ansible and bench/.venv-pyinfra with pip (PyPI) if missing, for the
    ``tools`` of this run; return versions."""
    versions = {}
    for tool, (venv, package) in VENVS.items():
        if tool not in tools:
            continue
        binary = venv / "bin" / ("ansible-playbook" if tool == "ansible" else "pyinfra")
        if not binary.exists():
            subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin/pip"), "install", "-q", package], check=True)
        out = subprocess.run([str(venv / "bin/pip"), "show", package], capture_output=True, text=True).stdout
        versions[package] = next((ln.split()[1] for ln in out.splitlines() if ln.startswith("Version:")), "?")
    import paramiko

    versions["paramiko"] = paramiko.__version__
    return versions


def portable_template(source: Path = TEMPLATE) -> str:
    """supakong's template with ``x | yaml_str`` spelled in standard Jinja (same output)."""
    quoted = '{{{{ "\'" ~ (({}) | string | replace("\'", "\'\'")) ~ "\'" }}}}'
    return _YAML_STR.sub(lambda m: quoted.format(m.group(1)), source.read_text())


@dataclass(frozen=True)
class Inputs:
    """Everything generated for the fleet: the supakong inventory, desired files, templates."""

    inventory: Path
    hosts: dict[str, HostConfig]
    desired: dict[str, str]
    specs: dict[str, SandboxSpec]
    apikeys: dict[str, str]  # each host's anon key, for the sockets held through a change


def write_inputs(specs: Sequence[SandboxSpec]) -> Inputs:
    """Write supakong's inventory, the desired files and the Ansible/pyinfra templates."""
    shutil.rmtree(WORK / "rendered", ignore_errors=True)
    (WORK / "rendered").mkdir(parents=True, mode=0o700)
    inventory = write_sandbox_inventory(WORK / "inventory" / "hosts.yml", specs, group="bench")
    hosts = dict(load_inventory(inventory).hosts)
    desired, apikeys = {}, {}
    for name, host in hosts.items():
        secrets = load_secrets(host.secrets_env_file)
        desired[name], apikeys[name] = render_kong_config(host, secrets), secrets.anon_key
        path = WORK / "rendered" / f"{name}.yml"
        path.write_text(desired[name])
        path.chmod(0o600)
    portable = portable_template()
    (WORK / "ansible-kong.yml.j2").write_text("#jinja2: trim_blocks: True, lstrip_blocks: True\n" + portable)
    (WORK / "pyinfra-kong.yml.j2").write_text(portable)
    return Inputs(inventory, hosts, desired, {s.name: s for s in specs}, apikeys)


def _template_vars(host: HostConfig) -> dict[str, object]:
    context = template_context(host, load_secrets(host.secrets_env_file))
    return {k: v for k, v in context.items() if isinstance(v, (str, int, float, bool, dict, list)) or v is None}


def commands(inputs: Inputs, names: Sequence[str], parallel: int, run_id: str) -> dict[str, Command]:
    """The command line of each tool for the hosts ``names`` (files written for this N)."""
    n = len(names)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PYINFRA_"))}
    base_env["SUPAKONG_HOST_ALLOWLIST"] = "sandbox*"

    # Ansible: the sandbox ssh config per host, python3 on the target, no facts, pipelining.
    ansible_hosts = {}
    for name in names:
        host, spec = inputs.hosts[name], inputs.specs[name]
        ansible_hosts[name] = {
            **_template_vars(host),
            "ansible_host": spec.ssh_alias,
            "ansible_ssh_common_args": f"-F {spec.ssh_config_path}",
            "ansible_python_interpreter": "/usr/bin/python3",
            "bench_template": str(WORK / "ansible-kong.yml.j2"),
        }
    ansible_inv = WORK / f"ansible-{n}.json"
    ansible_inv.write_text(json.dumps({"bench": {"hosts": ansible_hosts}}))
    control = Path(f"/tmp/bench-cp-{run_id}")
    ansible_env = {
        **base_env,
        "ANSIBLE_FORKS": str(parallel),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
        "ANSIBLE_HOME": str(WORK / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(WORK / "ansible-tmp"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
    }

    # pyinfra: the same key and known_hosts, strict host keys.
    pyinfra_hosts = []
    for name in names:
        host, spec = inputs.hosts[name], inputs.specs[name]
        pyinfra_hosts.append(
            [
                name,
                {
                    "ssh_hostname": spec.vps_addr,
                    "ssh_user": SSH_USER,
                    "ssh_key": str(CLIENT_KEY),
                    "ssh_known_hosts_file": str(spec.known_hosts_path),
                    "ssh_strict_host_key_checking": "yes",
                    "ssh_allow_agent": False,
                    "bench_template": str(WORK / "pyinfra-kong.yml.j2"),
                    "kong_config_path": host.kong_config_path,
                    "kong_container": host.kong_container,
                    "template_vars": _template_vars(host),
                },
            ]
        )
    (WORK / f"pyinfra-{n}.json").write_text(json.dumps(pyinfra_hosts))
    pyinfra_inv = WORK / f"pyinfra_inventory_{n}.py"
    pyinfra_inv.write_text(
        f"import json\nbench = [(name, data) for name, data in json.load(open({str(WORK / f'pyinfra-{n}.json')!r}))]\n"
    )

    # The paramiko loop.
    loop_hosts = [
        {
            "name": name,
            "address": inputs.specs[name].vps_addr,
            "user": SSH_USER,
            "key": str(CLIENT_KEY),
            "known_hosts": str(inputs.specs[name].known_hosts_path),
            "path": inputs.hosts[name].kong_config_path,
            "container": inputs.hosts[name].kong_container,
            "content": str(WORK / "rendered" / f"{name}.yml"),
            "healthcheck": CHEAP_HEALTHCHECK["test"][1],
        }
        for name in names
    ]
    loop_json = WORK / f"paramiko-{n}.json"
    loop_json.write_text(json.dumps(loop_hosts))

    supakong = [str(REPO / ".venv/bin/fab"), "deploy-kong", "-H", ",".join(names), "--parallel", str(parallel)]
    supakong += ["--no-verify", "--report", str(WORK / f"supakong-report-{run_id}.json")]
    supakong_env = {**base_env, "SUPAKONG_INVENTORY": str(inputs.inventory)}
    return {
        # A change loads the new config into the running Kong (POST /config on its Admin API)...
        "supakong": Command(supakong, supakong_env, REPO),
        # ... or, with --restart, restarts Kong as every change did before.
        "supakong-restart": Command([*supakong, "--restart"], supakong_env, REPO),
        "ansible": Command(
            [str(VENVS["ansible"][0] / "bin/ansible-playbook"), "-i", str(ansible_inv)]
            + [str(BENCH / "ansible/site.yml")],
            ansible_env,
            BENCH / "ansible",
        ),
        "pyinfra": Command(
            [str(VENVS["pyinfra"][0] / "bin/pyinfra"), "-y", "--parallel", str(parallel), str(pyinfra_inv)]
            + [str(BENCH / "pyinfra/deploy.py")],
            base_env,
            WORK,
        ),
        "paramiko": Command(
            [str(REPO / ".venv/bin/python"), str(BENCH / "paramiko_loop.py"), str(loop_json), str(parallel)],
            base_env,
            WORK,
        ),
        "paramiko+health": Command(
            [str(REPO / ".venv/bin/python"), str(BENCH / "paramiko_loop.py"), str(loop_json), str(parallel), "health"],
            base_env,
            WORK,
        ),
    }


def close_ansible_masters(run_id: str) -> None:
    """Stop the SSH ControlPersist masters Ansible left (each run starts cold)."""
    control = Path(f"/tmp/bench-cp-{run_id}")
    if not control.is_dir():
        return
    for sock in control.iterdir():
        subprocess.run(["ssh", "-S", str(sock), "-O", "exit", "bench"], capture_output=True, check=False)
    shutil.rmtree(control, ignore_errors=True)
