"""``ansible_become`` against real sudo: a deploy user that is not in the docker group and
cannot write the config's directory (Ubuntu's ``ubuntu`` with its NOPASSWD rule, on a server
whose compose directory is root's) deploys, rolls back and runs doctor through ``sudo -n``;
a user whose sudo asks for a password gets one line and an untouched host; a later run
without become meets the root-owned state with a message that says what to do.

The users log in through the sandbox's ``become`` sshd (supakong.sandbox.variants) and
reach the sandbox's own containers and file."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from supakong.deploy import DeployOptions, deploy_host
from supakong.doctor import doctor_host
from supakong.errors import DeployError
from supakong.inventory import load_inventory
from supakong.render import render_kong_config
from supakong.rollback import rollback_host
from supakong.sandbox import sandbox_reset
from supakong.sandbox.spec import SSH_USER
from supakong.sandbox.variants import BECOME, password_user, start_variants, sudo_user, write_variants_inventory
from supakong.transport import HostConnection
from supakong.verify_run import VerifyOptions


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def hosts(sandbox_spec, tmp_path_factory):
    start_variants(sandbox_spec, (BECOME,))
    inventory = load_inventory(write_variants_inventory(tmp_path_factory.mktemp("become") / "hosts.yml", sandbox_spec))
    return {
        "become": inventory.host(f"{sandbox_spec.name}-become"),
        "sudo-user": inventory.host(f"{sandbox_spec.name}-sudo-user"),
        "password": inventory.host(f"{sandbox_spec.name}-become-password"),
        "docker-group": inventory.host(sandbox_spec.name),
    }


@pytest.fixture
def root_owned(sandbox_spec):
    """The sandbox in its before state, its config directory and file root's (0755, 0640), as
    a compose directory made with sudo is; put back as it was afterwards."""
    spec = sandbox_reset(sandbox_spec)
    config = spec.kong_config_path
    for path in (config.parent, config):
        os.chown(path, 0, 0)
    yield spec
    sandbox_reset(sandbox_spec)


def test_a_sudo_user_without_the_docker_group_deploys_with_become(root_owned, hosts, secrets, out, tmp_path):
    config = root_owned.kong_config_path
    state = config.parent / ".supakong"

    result = deploy_host(hosts["become"], DeployOptions(), out)

    assert (result.status, result.verify_state) == ("changed", "SUBSCRIBED"), out.text
    assert config.read_text() == render_kong_config(hosts["become"], secrets)
    # Written as root, with the inventory's mode, and read by Kong (the deploy checked the
    # container's sha256 of its mount, and Realtime answered through it).
    stat = config.stat()
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (0, 0, hosts["become"].file_mode)
    assert "sees /home/kong/temp.yml" not in out.text
    for made in (state, state / "audit.log", state / "backups", Path(result.backup or "")):
        assert made.stat().st_uid == 0, f"{made} was not written by root"
    assert deploy_host(hosts["become"], DeployOptions(), out).message == "no change"

    edited = tmp_path / "kong.yml"
    edited.write_text(config.read_text() + "# edited\n")
    assert deploy_host(hosts["become"], DeployOptions(file=edited), out).status == "changed"
    rolled = rollback_host(hosts["become"], None, True, out)
    assert (rolled.status, rolled.verify_state) == ("changed", "SUBSCRIBED"), out.text
    assert sha256(config) == result.new_sha256
    assert doctor_host(hosts["become"], VerifyOptions(), out).status == "ok", out.text


def test_without_become_the_same_user_is_told_to_set_it_and_nothing_changes(root_owned, hosts, out):
    config = root_owned.kong_config_path
    before = sha256(config)
    with pytest.raises(DeployError) as err:
        deploy_host(hosts["sudo-user"], DeployOptions(), out)
    message = str(err.value)
    assert "\n" not in message and "ansible_become: true" in message and "permission denied" in message
    assert sha256(config) == before and not (config.parent / ".supakong").exists()


def test_sudo_asking_for_a_password_is_one_line_naming_the_user_and_the_fix(root_owned, hosts, sandbox_spec, out):
    config = root_owned.kong_config_path
    before = sha256(config)
    with pytest.raises(DeployError) as err:
        deploy_host(hosts["password"], DeployOptions(), out)
    message = str(err.value)
    user = password_user(sandbox_spec)
    assert "\n" not in message and message.startswith(f"{hosts['password'].name}: sudo asks for a password for {user}")
    assert f"{user} ALL=(root) NOPASSWD: ALL" in message and "docker group" in message
    assert sha256(config) == before and not (config.parent / ".supakong").exists()
    assert "Traceback" not in out.text


def test_a_run_without_become_after_one_with_it_says_what_to_do(root_owned, hosts, secrets, out, tmp_path):
    config = root_owned.kong_config_path
    for path in (config.parent, config):  # the docker-group login's own directory and file again
        shutil.chown(path, SSH_USER, SSH_USER)
    assert deploy_host(hosts["become"], DeployOptions(verify=False), out).status == "changed"
    after = sha256(config)
    edited = tmp_path / "kong.yml"
    edited.write_text(render_kong_config(hosts["docker-group"], secrets) + "# edited\n")

    with pytest.raises(DeployError) as err:
        deploy_host(hosts["docker-group"], DeployOptions(file=edited), out)

    message = str(err.value)
    assert "Permission denied" in message and "ansible_become: true" in message and ".supakong" in message
    assert "\n" not in message
    assert sha256(config) == after and not (config.parent / ".supakong" / "lock").exists()


def test_docker_under_become_is_the_inventorys_engine_named_to_sudos_docker_cli(hosts, sandbox_spec):
    with HostConnection(hosts["become"]) as conn:
        assert conn.become is not None and conn.user == sudo_user(sandbox_spec)
        assert conn.run(["id", "-u"]).text.strip() == "0"
        kong = conn.engine().inspect_container(sandbox_spec.kong_container)
        assert kong is not None and kong["State"]["Running"]  # only the sandbox's engine has it
        assert conn.engine_route().mode == "dial-stdio"


def test_the_sandbox_made_its_sudo_users_as_documented(hosts, sandbox_spec):
    import grp
    import pwd

    for user in (sudo_user(sandbox_spec), password_user(sandbox_spec)):
        entry = pwd.getpwnam(user)
        assert entry.pw_uid < 1000 and entry.pw_shell == "/bin/sh"  # a system user
        assert user not in grp.getgrnam("docker").gr_mem
    rules = Path(f"/etc/sudoers.d/supakong-sandbox-{sandbox_spec.index}")
    assert rules.stat().st_mode & 0o777 == 0o440
    assert shutil.which("visudo") is not None
