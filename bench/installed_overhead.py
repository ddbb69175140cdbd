"""What an application pays for carrying cpviz's agent with nobody connected:
``cpviz.agent.install()`` in an I/O-bound asyncio program (bench/_echo_load.py: a loopback
streams server under a client load of its own) against the same program run plainly.

With no viewer the agent's probes run (a tracer on each loop, the watchdog's heartbeat) and its
streamer thread empties their buffers every 0.2 s; nothing is sent anywhere. ``--flight S``
measures with a flight recorder of S seconds on as well. Pairs alternate (plain, installed,
plain, …) so drift on a shared machine hits both alike; the value is the median of the per-pair
ratios of the program's own time, which it measures and prints itself the same way in both.
Target ≤ 1.03×.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from _common import BENCH_DIR, end_on_sigterm, leftovers, log, spread

PROGRAM = os.path.join(BENCH_DIR, "_echo_load.py")
ROOT = os.path.dirname(BENCH_DIR)
CLIENTS, REQUESTS = 20, 2000
TARGET = 1.03
#: The program, with the agent installed before its first loop is made (as an application's
#: entry point would), then run as ``__main__`` exactly as ``python _echo_load.py`` runs it.
INSTALLED = (
    "import runpy, sys, cpviz.agent\n"
    "agent = cpviz.agent.install(flight_s=float(sys.argv.pop(1)))\n"
    "sys.argv[0] = {program!r}\n"
    "runpy.run_path({program!r}, run_name='__main__')\n"
    "agent.close()\n"
)


def timed(argv: list[str], env: dict[str, str]) -> float:
    """The program's own time for one run."""
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=300, env=env)
    said = [line for line in out.stdout.splitlines() if line.startswith("elapsed ")]
    if not said:
        raise SystemExit(f"the program did not say how long it took: {out.stderr[-500:]}")
    return float(said[-1].split()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9, help="pairs (default 9)")
    parser.add_argument("--quick", action="store_true", help="5 pairs, a lighter load")
    parser.add_argument("--flight", type=float, default=0.0, metavar="S",
                        help="with a flight recorder of S seconds (default: none)")
    args = parser.parse_args()
    end_on_sigterm()
    pairs = 5 if args.quick else max(3, args.runs)
    load = [str(CLIENTS), str(REQUESTS // (3 if args.quick else 1))]
    with tempfile.TemporaryDirectory(prefix="cpviz-bench-") as sockets:
        os.chmod(sockets, 0o700)
        env = dict(os.environ, CPVIZ_SOCKET_DIR=sockets)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
        plain_argv = [sys.executable, PROGRAM, *load]
        installed_argv = [sys.executable, "-c", INSTALLED.format(program=PROGRAM),
                          str(args.flight), *load]
        timed(plain_argv, env)  # warm the file cache for both
        timed(installed_argv, env)
        plain: list[float] = []
        installed: list[float] = []
        for i in range(pairs):
            order = [(plain_argv, plain), (installed_argv, installed)]
            for argv, into in order if i % 2 == 0 else reversed(order):
                into.append(timed(argv, env))
        left_sockets = os.listdir(sockets)
    ratios = [w / p for p, w in zip(plain, installed, strict=True)]
    ratio = statistics.median(ratios)
    left = leftovers()
    if left or left_sockets:
        log(f"left behind: {left} {left_sockets}")
        return 1
    log(f"plain     {spread(plain)} s")
    log(f"installed {spread(installed)} s (cpviz.agent.install(), nobody connected"
        + (f", flight recorder {args.flight:g} s" if args.flight else "") + ")")
    log(f"installed-agent overhead: {ratio:.3f}x wall (target <= {TARGET}x), {pairs} pairs")
    print(json.dumps({
        "metric": "installed_overhead", "value": round(ratio, 3), "unit": "x",
        "target": TARGET, "better": "lower", "pairs": pairs,
        "plain_s": round(statistics.median(plain), 3),
        "installed_s": round(statistics.median(installed), 3),
        "flight_s": args.flight, "ratios": [round(r, 3) for r in ratios],
        "load": {"clients": CLIENTS, "requests": int(load[1])},
        "python": sys.version.split()[0],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
