"""Load test of serve.py on loopback: single-title requests/s and latency at 1, 8 and 64 concurrent clients,
titles/s for 100-title requests, tail latency at a fixed offered rate, with and without server-side batching,
and the in-process TitleClassifier throughput as the ceiling. Bounded: every phase stops after --seconds or
--max_requests, whichever comes first.

    flock -x /tmp/jobtitles-cpu.lock python bench/serve_load.py --model outputs/serve_bench_model

The server runs in its own process (serve.py, --backend onnx-int8 unless --backend says otherwise); the load generator is one asyncio process
with one aiohttp.ClientSession (keep-alive connections, one per client; installed with `datasets`). aiohttp
rather than httpx: on this 2-core machine httpx's async client used 4.7 CPU-s of a 6 s phase at 64 clients,
taking the cores from the server it was measuring. Both processes share the machine's cores, so the figures
are what one box serving itself can do; the generator's own CPU time is reported beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def summary(latencies: list[float], elapsed: float, n_titles: int, errors: int, cpu: float) -> dict:
    ms = np.array(latencies) * 1000
    return {"requests": len(latencies), "errors": errors, "seconds": round(elapsed, 2),
            "req_per_s": round(len(latencies) / elapsed, 1), "titles_per_s": round(n_titles / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "generator_cpu_s": round(cpu, 2)}


def session(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def post(client: aiohttp.ClientSession, url: str, titles: list[str]) -> int:
    async with client.post(url + "/predict", json={"titles": titles}) as r:
        await r.read()
        return r.status


async def closed_loop(url: str, titles: list[str], clients: int, per_request: int, seconds: float,
                      max_requests: int) -> dict:
    """`clients` loops, each sending its next request as soon as the previous one is answered."""
    latencies: list[float] = []
    errors = 0
    async with session(clients) as client:
        # open every client's connection and warm the server
        await asyncio.gather(*(post(client, url, titles[:per_request]) for _ in range(clients)))
        rng = random.Random(0)
        start, cpu0 = time.perf_counter(), cpu_seconds()
        deadline = start + seconds

        async def one_client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline and len(latencies) + errors < max_requests:
                i = rng.randrange(len(titles) - per_request)
                t0 = time.perf_counter()
                if await post(client, url, titles[i:i + per_request]) == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return summary(latencies, elapsed, len(latencies) * per_request, errors, cpu_seconds() - cpu0)


async def open_loop(url: str, titles: list[str], rate: float, seconds: float, max_in_flight: int) -> dict:
    """Requests sent on a fixed schedule (`rate` per second) whatever the answers do; latency is measured from
    the scheduled send time, so a server that falls behind shows it (no coordinated omission)."""
    latencies: list[float] = []
    errors = 0
    sem = asyncio.Semaphore(max_in_flight)
    async with session(max_in_flight) as client:
        await asyncio.gather(*(post(client, url, [t]) for t in titles[:max_in_flight]))
        n = int(rate * seconds)
        start, cpu0 = time.perf_counter(), cpu_seconds()

        async def one(k: int) -> None:
            nonlocal errors
            scheduled = start + k / rate
            async with sem:
                status = await post(client, url, [titles[k % len(titles)]])
            if status == 200:
                latencies.append(time.perf_counter() - scheduled)
            else:
                errors += 1

        tasks = []
        for k in range(n):
            delay = start + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(k)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    out = summary(latencies, elapsed, len(latencies), errors, cpu_seconds() - cpu0)
    out["offered_per_s"] = rate
    return out


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def start_server(model: Path, port: int, backend: str, extra: list[str]) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), "--model", str(model), "--port", str(port),
                             "--backend", backend, "--log_level", "warning", *extra], env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve.py exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("serve.py did not become healthy in 180 s")


def in_process(model: Path, titles: list[str], seconds: float, backend: str) -> dict:
    """The ceiling: TitleClassifier in this process, batched (batch 64) and one title per call."""
    from jobtitles.predict.inference import TitleClassifier

    clf = TitleClassifier(model, backend=backend, batch_size=64)
    clf.predict(titles[:256])
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        clf.predict(titles[:1000])
        n += 1000
    batched = n / (time.perf_counter() - start)
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds / 2:
        clf.predict([titles[n % len(titles)]])
        n += 1
    single = n / (time.perf_counter() - start)
    return {"batched_titles_per_s": round(batched, 1), "single_title_calls_per_s": round(single, 1)}


async def server_phases(url: str, titles: list[str], args: argparse.Namespace) -> dict:
    out = {}
    for c in (1, 8, 64):
        out[f"single_c{c}"] = await closed_loop(url, titles, c, 1, args.seconds, args.max_requests)
    out["batch100_c2"] = await closed_loop(url, titles, 2, 100, args.seconds, args.max_requests)
    out[f"open_{args.rate:g}"] = await open_loop(url, titles, args.rate, args.seconds, 64)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "outputs" / "serve_bench_model")
    p.add_argument("--titles", type=Path, default=ROOT / "data" / "job_titles.csv")
    p.add_argument("--seconds", type=float, default=6.0, help="Per phase.")
    p.add_argument("--max_requests", type=int, default=20000, help="Per phase.")
    p.add_argument("--rate", type=float, default=300.0, help="Offered single-title requests/s (open loop).")
    p.add_argument("--configs", default="default,before,no_gc_freeze,one_worker,no_batching",
                   help="Comma list of: default (serve.py's defaults), before (the defaults until 2026-11-27: one "
                        "worker with every core, forward passes of 64, no gc.freeze), no_gc_freeze, one_worker "
                        "(--workers 1: one model copy with every core), wait2ms (--batch_wait_ms 2), wait0ms (--batch_wait_ms 0: only what queued "
                        "while the model was busy), no_batching (--no_batching), wait0ms_h11 (wait0ms on plain "
                        "asyncio + h11, uvicorn without its [standard] extras), wait0ms_1thread (--threads 1), wait0ms_b32 / "
                        "wait0ms_b16 (--batch_size 32 / 16: smaller length-sorted forward passes in a model call).")
    p.add_argument("--backend", default="onnx-int8", choices=["torch", "onnx", "onnx-int8"],
                   help="The server's and the in-process ceiling's backend.")
    p.add_argument("--output", type=Path, help="Write the results as JSON here too.")
    args = p.parse_args()

    from jobtitles.core.data import load_titles

    titles = load_titles(args.titles)[0]
    random.Random(0).shuffle(titles)
    results: dict = {"in_process_before": in_process(args.model, titles, args.seconds, args.backend),
                     "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                              text=True).stdout.strip(),
                     "date": time.strftime("%Y-%m-%d", time.gmtime())}
    print(json.dumps({"in_process_before": results["in_process_before"]}), flush=True)
    flags = {"wait2ms": ["--batch_wait_ms", "2"], "wait0ms": ["--batch_wait_ms", "0"], "no_batching": ["--no_batching"],
             "wait0ms_h11": ["--batch_wait_ms", "0", "--loop", "asyncio", "--http", "h11"],
             "wait0ms_1thread": ["--batch_wait_ms", "0", "--threads", "1"],
             "wait0ms_b32": ["--batch_wait_ms", "0", "--batch_size", "32"],
             "wait0ms_b16": ["--batch_wait_ms", "0", "--batch_size", "16"],
             "default": [], "no_gc_freeze": ["--no_gc_freeze"], "one_worker": ["--workers", "1"],
             "before": ["--workers", "1", "--batch_size", "64", "--no_gc_freeze"]}
    for name in args.configs.split(","):
        port = free_port()
        proc = start_server(args.model, port, args.backend, flags[name])
        try:
            results[name] = asyncio.run(server_phases(f"http://127.0.0.1:{port}", titles, args))
            results[name]["server_peak_rss_mib"] = peak_rss_mib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        print(json.dumps({name: results[name]}), flush=True)
    # measured again at the end: the ceiling is the better of the two (the ratios below are then conservative)
    results["in_process_after"] = in_process(args.model, titles, args.seconds, args.backend)
    results["in_process"] = max(results["in_process_before"], results["in_process_after"],
                                key=lambda r: r["batched_titles_per_s"])
    print_table(results, args)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def print_table(results: dict, args: argparse.Namespace) -> None:
    ceiling = results["in_process"]["batched_titles_per_s"]
    print(f"\n{results['date']}, commit {results['commit']}, {os.cpu_count()} CPUs, {args.seconds:g} s per phase")
    for when in ("before", "after"):
        r = results[f"in_process_{when}"]
        print(f"in-process TitleClassifier {args.backend} ({when} the server runs): {r['batched_titles_per_s']:,.0f} "
              f"titles/s batched (1,000 titles per call, batch 64), {r['single_title_calls_per_s']:,.0f} "
              f"single-title calls/s")
    print("\n| server | load | requests/s | titles/s | p50 ms | p95 ms | p99 ms | errors | generator CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    names = {"single_c1": "1 client, 1 title", "single_c8": "8 clients, 1 title", "single_c64": "64 clients, 1 title",
             "batch100_c2": "2 clients, 100 titles", f"open_{args.rate:g}": f"{args.rate:g} req/s offered, 1 title"}
    for config, phases in results.items():
        if not isinstance(phases, dict) or config.startswith("in_process"):
            continue
        print(f"| {config} | server peak RSS {phases['server_peak_rss_mib']:,.0f} MiB | | | | | | | |")
        for key, label in names.items():
            r = phases[key]
            extra = f" ({r['titles_per_s'] / ceiling:.0%} of in-process)" if key == "batch100_c2" else ""
            print(f"| {config} | {label} | {r['req_per_s']:,.0f} | {r['titles_per_s']:,.0f}{extra} | {r['p50_ms']} | "
                  f"{r['p95_ms']} | {r['p99_ms']} | {r['errors']} | {r['generator_cpu_s']} |")


if __name__ == "__main__":
    sys.exit(main())
