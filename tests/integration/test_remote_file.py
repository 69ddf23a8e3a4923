"""The one-command replacement on the sandbox: the new content goes over the command's stdin,
and only a complete copy of it, over a file that did not change since the look, is put in
place; every failure leaves the old file and no temp file behind."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from supakong.audit import append_argv
from supakong.errors import DeployError, TransportError
from supakong.hostlock import LockOwner, acquire
from supakong.look import look
from supakong.remote_file import (
    backup_path,
    list_backups,
    read_remote_file,
    replace_argv,
    replace_file_atomically,
    restore_backup,
    temp_path,
)
from supakong.sandbox.spec import SSH_USER
from supakong.transport import HostConnection

OLD = b"old: config\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A config file the sandbox's SSH user owns, in a directory of its own."""
    directory = tmp_path_factory.mktemp("replace")
    directory.chmod(0o755)
    for parent in directory.parents:  # pytest's base temp dirs are private to root
        if parent == Path("/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    config = directory / "api" / "kong.yml"
    config.parent.mkdir()
    config.write_bytes(OLD)
    for path in (config.parent, config):
        shutil.chown(path, SSH_USER, SSH_USER)
    yield config
    shutil.rmtree(directory, ignore_errors=True)


def temp_files(config: Path) -> list[Path]:
    return list(config.parent.glob(".*.supakong-*.tmp"))


def test_the_content_goes_over_stdin_into_place_with_mode_and_a_backup(host, target):
    new = bytes(range(256)) * 400  # every byte value, more than one SSH window packet
    with HostConnection(host) as conn:
        backup = replace_file_atomically(conn, str(target), new, expected_sha=sha(OLD), mode=0o640, keep=3, stamp="S1")
        assert conn.commands_run == 1, "one command, no SFTP session"

    assert target.read_bytes() == new and target.stat().st_mode & 0o777 == 0o640
    assert backup == backup_path(str(target), "S1") and Path(backup).read_bytes() == OLD
    assert not temp_files(target)


def test_a_transfer_cut_short_replaces_nothing(host, target):
    new = b"x" * 100_000
    tmp, backup = temp_path(str(target)), backup_path(str(target), "S2")
    with HostConnection(host) as conn:
        result = conn.run(
            replace_argv(str(target), tmp, backup, sha(OLD), 0o640, 3, sha(new)), stdin=new[:5000], check=False
        )

    assert result.exit_code == 6 and "the transfer was cut" in result.stderr.decode()
    assert target.read_bytes() == OLD and not Path(backup).exists() and not temp_files(target)


def test_a_file_changed_since_the_look_is_left_alone_in_a_one_line_error(host, target):
    with HostConnection(host) as conn, pytest.raises(TransportError) as error:
        replace_file_atomically(conn, str(target), b"new\n", expected_sha=sha(b"seen"), mode=0o640, keep=3, stamp="S3")

    message = str(error.value)
    assert "\n" not in message and f"cannot replace {target}" in message and "changed since it was read" in message
    assert target.read_bytes() == OLD and not temp_files(target)


def test_an_unwritable_directory_names_the_temp_file_and_the_reason(host, target):
    target.parent.chmod(0o555)
    try:
        with HostConnection(host) as conn, pytest.raises(TransportError) as error:
            replace_file_atomically(conn, str(target), b"new\n", expected_sha=sha(OLD), mode=0o640, keep=3, stamp="S4")
    finally:
        target.parent.chmod(0o755)

    message = str(error.value)
    assert "\n" not in message and f"cannot upload to {target.parent}/.kong.yml.supakong-" in message
    assert "Permission denied" in message
    assert target.read_bytes() == OLD and not temp_files(target)


def test_the_files_mtime_is_read_to_the_nanosecond(host, target):
    # A file written in the same second as Kong started, after it, is a pending restart:
    # whole seconds would hide it.
    with HostConnection(host) as conn:
        state, _ = look(conn, str(target), host.kong_container, host.realtime_container)
        again = read_remote_file(conn, str(target))
    exact = target.stat().st_mtime_ns / 1e9
    assert state.file.mtime == again.mtime == pytest.approx(exact, abs=1e-6)
    assert state.file.mtime != int(state.file.mtime)


def stamp_at(seconds: int) -> str:
    """A backup stamp as the deploy writes it, ``seconds`` after an arbitrary start."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(1_780_000_000 + seconds)) + "000000Z"


def test_rollback_to_the_oldest_then_a_failed_deploy_still_finds_its_own_backup(host, target):
    # Three deploys with keep=3, `rollback-kong --to <oldest>`, then a deploy that fails: its
    # automatic rollback restores the backup that deploy just took. Sorting by mtime (which
    # `cp -p` keeps) put that backup last and the same command pruned it.
    path, versions = str(target), [OLD, b"v1\n", b"v2\n", b"v3\n"]
    with HostConnection(host) as conn:
        taken = []
        for n in range(1, 4):
            taken.append(
                replace_file_atomically(
                    conn, path, versions[n], expected_sha=sha(versions[n - 1]), mode=0o640, keep=3, stamp=stamp_at(n)
                )
            )
        assert list_backups(conn, path) == taken[::-1]
        before_restore = time.time()
        assert restore_backup(conn, path, taken[0]) == sha(OLD)  # rollback-kong --to <oldest>
        assert target.stat().st_mtime >= before_restore - 1, "a restored file is a new file for Kong"
        own = replace_file_atomically(
            conn, path, b"bad\n", expected_sha=sha(OLD), mode=0o640, keep=3, stamp=stamp_at(4)
        )
        assert own is not None and Path(own).read_bytes() == OLD, "the backup just taken is kept"
        assert list_backups(conn, path) == [own, taken[2], taken[1]], "the oldest stamp was pruned"
        assert restore_backup(conn, path, own) == sha(OLD)  # the failed deploy's own rollback


def test_backups_are_named_exactly_and_another_configs_are_never_listed_or_pruned(host, target):
    backups = target.parent / ".supakong" / "backups"
    backups.mkdir(parents=True)
    others = [backups / f"{name}.{stamp_at(0)}" for name in ("kong.yml.bak", "old-kong.yml", "kong.ymlx")]
    for other in [*others, backups / "kong.yml.notes"]:
        other.write_bytes(b"another file\n")
    for path in (backups.parent, backups, *backups.iterdir()):
        shutil.chown(path, SSH_USER, SSH_USER)
    with HostConnection(host) as conn:
        own = replace_file_atomically(
            conn, str(target), b"new\n", expected_sha=sha(OLD), mode=0o640, keep=1, stamp=stamp_at(5)
        )
        assert list_backups(conn, str(target)) == [own]
    assert all(other.exists() for other in others) and (backups / "kong.yml.notes").exists()


def test_a_symlinked_backups_directory_is_refused_and_nothing_is_replaced(host, target):
    elsewhere = target.parent.parent / "elsewhere"  # reachable by the SSH user
    elsewhere.mkdir()
    shutil.chown(elsewhere, SSH_USER, SSH_USER)
    (target.parent / ".supakong").mkdir()
    (target.parent / ".supakong" / "backups").symlink_to(elsewhere)
    with HostConnection(host) as conn, pytest.raises(TransportError, match="is a symbolic link"):
        replace_file_atomically(
            conn, str(target), b"new\n", expected_sha=sha(OLD), mode=0o640, keep=3, stamp=stamp_at(6)
        )
    assert target.read_bytes() == OLD and list(elsewhere.iterdir()) == [] and not temp_files(target)


def test_the_audit_line_is_never_appended_through_a_symlinked_state_directory(host, target):
    elsewhere = target.parent.parent / "elsewhere"  # reachable by the SSH user
    elsewhere.mkdir()
    shutil.chown(elsewhere, SSH_USER, SSH_USER)
    (target.parent / ".supakong").symlink_to(elsewhere)
    with HostConnection(host) as conn:
        conn.run(append_argv(str(target), '{"task": "deploy-kong"}'), check=False)
    assert list(elsewhere.iterdir()) == []


def test_the_lock_is_never_taken_through_a_symlinked_state_directory(host, target):
    elsewhere = target.parent.parent / "elsewhere"  # reachable by the SSH user
    elsewhere.mkdir()
    shutil.chown(elsewhere, SSH_USER, SSH_USER)
    (target.parent / ".supakong").symlink_to(elsewhere)
    with HostConnection(host) as conn, pytest.raises(DeployError, match="is a symbolic link"):
        acquire(conn, str(target), host.kong_container, host.realtime_container, LockOwner.current("test"))
    assert list(elsewhere.iterdir()) == []
