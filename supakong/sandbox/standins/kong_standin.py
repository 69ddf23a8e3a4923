"""The Kong stand-in's entry script: the container's ``/bin/kong`` runs
``python /standins/kong_standin.py "$@"``.

Command line::

    kong docker-start | start     serve the proxy until SIGTERM/SIGINT
    kong health [-p PREFIX]       exit 0 if the pid in $KONG_PREFIX/pids/nginx.pid is alive
    kong config parse FILE        validate FILE like start does ("parse successful")
    kong version                  the bare version, like kong/cmd/version.lua

Environment: KONG_DECLARATIVE_CONFIG, KONG_PLUGINS (default ``bundled``), KONG_VERSION
(default 2.8.1), KONG_ROUTER_FLAVOR (3.x), KONG_PROXY_LISTEN (default 0.0.0.0:8000),
KONG_PREFIX (default /usr/local/kong), KONG_DNS_HOSTSFILE (default /etc/hosts). Only in the
stand-in: KONG_STANDIN_HOSTS_ONLY=1 resolves names from the hosts file alone, so tests send
no DNS.

The code lives in the ``kong`` package beside this file (one module per concern); like this
script it needs only the standard library, PyYAML and lupa, and nothing of ``supakong``.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from kong.cli import main

    sys.exit(main(sys.argv[1:]))
