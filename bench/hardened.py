"""What a hardened sshd costs a run: a change and a no-op of deploy-kong through the sandbox's
own sshd and through its variants (supakong.sandbox.variants: MaxSessions 1 or 2 with
DisableForwarding yes, AllowStreamLocalForwarding no), with and without added round-trip
time (latency.py's delaying proxy in front of each sshd).

Round trips are (median wall time at RTT − median at 0 ms) / RTT: the waits a run spends on
the network, whatever its CPU costs. Logins and the server's refusals come from each sshd's
log. The verification is off (it talks to Kong directly, not through SSH).

    python bench/hardened.py [--sandbox sandbox-sshd:150] [--rtt 50] [--runs 5] [--only ms1-nofwd,…]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from latency import delayed_forward  # noqa: E402
from sshconfig import with_known_hosts  # noqa: E402

from supakong.deploy import DeployOptions, deploy_host  # noqa: E402
from supakong.inventory import HostConfig, load_inventory  # noqa: E402
from supakong.render import render_kong_config  # noqa: E402
from supakong.report import BufferOutput  # noqa: E402
from supakong.sandbox import sandbox_up  # noqa: E402
from supakong.sandbox.inventory import spec_for  # noqa: E402
from supakong.sandbox.variants import HARDENED, start_variants, write_variants_inventory  # noqa: E402
from supakong.secrets import load_secrets  # noqa: E402

PROXY_PORT = 10331


def proxied(host: HostConfig, known_hosts: str, tmp: Path, port: int) -> HostConfig:
    """``host`` dialling the delaying proxy on 127.0.0.1:``port``, trusting the same key there."""
    key = known_hosts.split(None, 1)[1]
    copy, _ = with_known_hosts(host, tmp, f"[127.0.0.1]:{port} {key}", hostname="127.0.0.1")
    return dataclasses.replace(copy, ssh_port=port)


def timed_runs(host: HostConfig, text: str, runs: int, tmp: Path) -> tuple[list[float], list[float]]:
    """Wall times of ``runs`` changes (each another file) and as many no-ops."""
    changes, noops = [], []
    for i in range(runs):
        config = tmp / "kong.yml"
        config.write_text(f"{text}# bench {time.time_ns()} {i}\n")
        options = DeployOptions(file=config, verify=False)
        started = time.monotonic()
        assert deploy_host(host, options, BufferOutput()).status == "changed"
        changes.append(time.monotonic() - started)
        started = time.monotonic()
        assert deploy_host(host, options, BufferOutput()).message == "no change"
        noops.append(time.monotonic() - started)
    return changes, noops


def log_counts(log: Path, start: int) -> tuple[int, int]:
    text = log.read_text()[start:]
    return text.count("Accepted publickey"), text.count("no more sessions")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", default="sandbox-sshd:150")
    parser.add_argument("--rtt", type=float, default=50.0, help="added round-trip time, ms")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    args = parser.parse_args()
    name, _, index = args.sandbox.partition(":")
    spec = sandbox_up(spec_for(name, int(index)))
    start_variants(spec, HARDENED)
    with tempfile.TemporaryDirectory(prefix="supakong-hardened-") as tmpdir:
        tmp = Path(tmpdir)
        inventory = load_inventory(write_variants_inventory(tmp / "hosts.yml", spec))
        base = inventory.host(spec.name)
        text = render_kong_config(base, load_secrets(base.secrets_env_file))
        rows = [("normal sshd", base, 22, spec.known_hosts_path, spec.state_dir / "sshd.log")]
        for v in HARDENED:
            if args.only and v.name not in args.only.split(","):
                continue
            log = spec.state_dir / f"{v.pid_name()}.log"
            rows.append((", ".join(v.settings), inventory.host(v.host_name(spec)), v.port, None, log))
        known_variants = (spec.state_dir / "known_hosts_variants").read_text().splitlines()[0]
        print(f"| sshd | change 0 ms | no-op 0 ms | change +{args.rtt:.0f} ms | no-op +{args.rtt:.0f} ms "
              "| round trips change / no-op | logins per run | refusals per run |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for label, host, port, known, log in rows:
            known_line = known.read_text().splitlines()[0] if known else known_variants
            cells: dict[float, tuple[list[float], list[float]]] = {}
            start = len(log.read_text())
            for rtt in (0.0, args.rtt):
                with delayed_forward(spec.vps_addr, rtt, PROXY_PORT, port):
                    where = tmp / f"p{port}"
                    where.mkdir(exist_ok=True)
                    cells[rtt] = timed_runs(proxied(host, known_line, where, PROXY_PORT), text, args.runs, tmp)
            logins, refusals = log_counts(log, start)
            per_run = 2 * 2 * args.runs
            med = {rtt: (statistics.median(c), statistics.median(n)) for rtt, (c, n) in cells.items()}
            trips = [(med[args.rtt][k] - med[0.0][k]) / (args.rtt / 1000) for k in (0, 1)]
            print(
                f"| {label} | {med[0.0][0]:.2f} s | {med[0.0][1]:.2f} s | {med[args.rtt][0]:.2f} s"
                f" | {med[args.rtt][1]:.2f} s | {trips[0]:.1f} / {trips[1]:.1f}"
                f" | {logins / per_run:.1f} | {refusals / per_run:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
