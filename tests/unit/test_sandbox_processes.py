"""A sandbox daemon that exited reads as stopped, even while it is our unreaped child."""

from __future__ import annotations

import subprocess
import sys

from supakong.sandbox.vps import process_running, wait_until_stopped


def test_a_running_child_is_running_and_an_exited_one_is_not_even_before_it_is_reaped():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert process_running(child.pid)
    finally:
        child.stdin.close()  # it exits now, and stays a zombie until someone reaps it
    assert wait_until_stopped(child.pid, 10)
    assert not process_running(child.pid)


def test_a_process_that_never_stops_is_reported_after_the_timeout():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not wait_until_stopped(child.pid, 0.2)
    finally:
        child.kill()
        child.wait()


def test_a_pid_that_does_not_exist_is_not_running():
    assert not process_running(2**22 + 12345)
