"""nginx's error log (stderr) and access log (stdout), where Kong's images send them."""

from __future__ import annotations

import os
import sys
import time

from .http import Request


def log_error(level: str, text: str) -> None:
    """One nginx error-log line on stderr."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S")
    print(f"{stamp} [{level}] {os.getpid()}#0: {text}", file=sys.stderr, flush=True)


def access_log(req: Request, line: str, status: int, size: int) -> None:
    """nginx's ``combined`` format on stdout. Like real Kong it logs the query string,
    apikey included."""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    referer, agent = req.header("referer") or "-", req.header("user-agent") or "-"
    print(f'{req.client_ip} - - [{stamp}] "{line}" {status} {size} "{referer}" "{agent}"', flush=True)
