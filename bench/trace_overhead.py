"""Tracing overhead: the concurrent client with N connections, traced and untraced.

One pair lab; the server runs `replyhi ADDRESS PORT N` and the client
`concurrent ADDRESS PORT N` (N connections opened at once). Each round runs
it once untraced and once with ftrace recording on both nodes (the default
probe set of `lab run`), alternating, and times the client from the host.
Prints both medians and their ratio. Target: traced <= 1.3 x untraced.

    .venv/bin/python bench/trace_overhead.py [--connections 1000] [--rounds 5] [--image debian-11]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from lab.backends.libvirt import LibvirtBackend
from lab.keys import PRIVATE_KEY_NAME
from lab.lifecycle.down import tear_down
from lab.lifecycle.up import bring_up
from lab.paths import Paths
from lab.programs import build_program
from lab.ssh import NodeSession
from lab.state import StateStore
from lab.topology import load_topology
from lab.tracers.ftrace import FtraceOptions, start_ftrace, stop_ftrace

ROOT = Path(__file__).resolve().parents[1]
PAIR = ROOT / "topologies" / "pair.yaml"
SERVER = "10.0.1.10"


async def one_run(server: NodeSession, client: NodeSession, *, n: int, port: int,
                  traced: bool, scratch: Path) -> float:
    if traced:
        options = FtraceOptions(comms=("replyhi", "concurrent"), buffer_kb=65536)
        await asyncio.gather(start_ftrace(server, options), start_ftrace(client, options))
    await server.run(f"/tmp/replyhi {SERVER} {port} {n} > /dev/null 2>&1 &", check=True)
    await server.run(f"while ! grep -q ':{port:04X} 00000000:0000 0A' /proc/net/tcp; "
                     "do usleep 20000; done", timeout=30, check=True)
    started = time.monotonic()
    await client.run(["/tmp/concurrent", SERVER, str(port), str(n)], timeout=600, check=True)
    elapsed = time.monotonic() - started
    if traced:
        stats = await asyncio.gather(stop_ftrace(server, scratch / "server.txt"),
                                     stop_ftrace(client, scratch / "client.txt"))
        lost = sum(s.lost for s in stats)
        entries = sum(s.entries for s in stats)
        print(f"    traced: {entries} events recorded, {lost} lost")
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--image", default="debian-11")
    args = parser.parse_args()
    paths = Paths.default()
    backend = LibvirtBackend()
    topology = load_topology(PAIR, overrides={"image": args.image})
    state = await bring_up(topology, PAIR, backend, paths)
    try:
        key = paths.lab_dir(state.name) / PRIVATE_KEY_NAME
        cache = paths.home / "programs"
        async with NodeSession.open("server", state.endpoint("server"), key) as server, \
                NodeSession.open("client", state.endpoint("client"), key) as client:
            await server.put(await build_program("replyhi", cache), "/tmp/replyhi")
            await client.put(await build_program("concurrent", cache), "/tmp/concurrent")
            print(f"lab {state.name}: Linux {state.nodes['client'].kernel_release}, "
                  f"{args.connections} connections per run")
            plain: list[float] = []
            traced: list[float] = []
            scratch = paths.lab_dir(state.name)
            for r in range(1, args.rounds + 1):
                port = 7000 + 2 * r
                plain.append(await one_run(server, client, n=args.connections, port=port,
                                           traced=False, scratch=scratch))
                traced.append(await one_run(server, client, n=args.connections, port=port + 1,
                                            traced=True, scratch=scratch))
                print(f"round {r}: untraced {plain[-1]:.2f} s   traced {traced[-1]:.2f} s")
    finally:
        await tear_down(state, backend, StateStore(paths))
        await backend.close()
    p, t = statistics.median(plain), statistics.median(traced)
    print(f"median: untraced {p:.2f} s   traced {t:.2f} s   ratio {t / p:.2f} (target <= 1.30)")


if __name__ == "__main__":
    asyncio.run(main())
