"""The floor: a minimal hand-written paramiko loop doing the same job as the tools.

Per host, in parallel threads: one SSH connection (strict host keys, TCP_NODELAY as supakong
sets it) and ONE exec: the remote script compares the file's sha256 with the desired one
and prints ``same`` or ``need``; on ``need`` the client streams the content on the same
exec's stdin, and the script writes a temp file, renames it into place and runs
``docker restart``. No validation, no backup, no lock, no health wait, no audit.

With ``health`` the same exec then runs Kong's healthcheck command in the container
(``docker exec``) every 0.1 s until it passes (30 s at most), as supakong does instead of
waiting for Docker's next probe: the floor for a loop that, like supakong, does not return
before Kong serves again.

Usage: python bench/paramiko_loop.py HOSTS.json PARALLEL [health]   (a list of host dicts)
"""

from __future__ import annotations

import hashlib
import json
import shlex
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import paramiko

SCRIPT = r"""
f=$1 want=$2 kong=$3
if [ -f "$f" ] && [ "$(sha256sum < "$f" | cut -d' ' -f1)" = "$want" ]; then echo same; exit 0; fi
echo need
t="$f.bench-tmp"
cat > "$t" && chmod 640 "$t" && mv -f "$t" "$f" && docker restart "$kong" >/dev/null || exit 1
if [ "$4" = health ]; then
  i=0
  until docker exec "$kong" /bin/sh -c "$5" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 300 ] && exit 2; sleep 0.1
  done
fi
echo changed
"""
WAIT = sys.argv[3] if len(sys.argv) > 3 else ""


def converge(host: dict[str, Any]) -> str:
    """One host: connect, one exec, upload+restart only if the hash differs."""
    content = Path(host["content"]).read_bytes()
    client = paramiko.SSHClient()
    client.load_host_keys(host["known_hosts"])
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    sock = socket.create_connection((host["address"], 22), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.connect(
        host["address"], username=host["user"], key_filename=host["key"], sock=sock, allow_agent=False,
        look_for_keys=False,
    )  # fmt: skip
    try:
        channel = client.get_transport().open_session()  # type: ignore[union-attr]
        want = hashlib.sha256(content).hexdigest()
        argv = ["sh", "-c", SCRIPT, "sh", host["path"], want, host["container"], WAIT, host["healthcheck"]]
        channel.exec_command(shlex.join(argv))
        stream = channel.makefile("rb")
        first = stream.readline().strip()
        if first == b"need":
            channel.sendall(content)
        channel.shutdown_write()
        rest = stream.read().strip()
        code = channel.recv_exit_status()
        if code != 0:
            raise RuntimeError(f"{host['name']}: exit {code}: {channel.makefile_stderr('rb').read()[-300:]!r}")
        return "changed" if rest == b"changed" else "ok"
    finally:
        client.close()


def main() -> int:
    hosts = json.loads(Path(sys.argv[1]).read_text())
    with ThreadPoolExecutor(max_workers=max(1, min(int(sys.argv[2]), len(hosts)))) as pool:
        results = list(pool.map(converge, hosts))
    for host, result in zip(hosts, results, strict=True):
        print(f"{host['name']}: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
