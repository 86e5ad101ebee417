"""Latency of kaleido-serve's text search under N concurrent clients on loopback (bounded count and time).

    python bench/serve_load.py --url http://127.0.0.1:8080 --clients 1,4,8 --requests 200 --seconds 30
    python bench/serve_load.py --demo_out demo_out   # starts kaleido-serve over the demo's outputs itself

Each client sends queries built from the catalog's own product texts (word pairs, so the answers are real
searches, not cache hits of one string) one after another; the script prints, per client count, the number of
requests, queries/s, and the median and 95th percentile of the request latency. It only talks to a loopback
address. Without --url it starts `kaleido-serve` itself with --serve_args (or the arguments the demo recorded in
--demo_out's summary.json["serve"]) and stops it at the end.
"""

import argparse
import asyncio
import ipaddress
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import time
import urllib.parse

import httpx


def _queries(client, url, count, seed=0):
    products = []
    for word in ("a", "e", "o"):
        body = client.get(f"{url}/api/search", params={"q": word, "k": 100}).json()
        products += [r.get("text", "") for r in body.get("results", [])]
    words = sorted({w for text in products for w in text.lower().split() if w.isalpha()})
    if len(words) < 2:
        raise SystemExit("serve_load: the catalog gave fewer than two words to build queries from")
    rng = random.Random(seed)
    return [" ".join(rng.sample(words, 2)) for _ in range(count)]


async def _run(url, queries, clients, deadline_s):
    latencies, errors = [], 0
    stop_at = time.perf_counter() + deadline_s
    queue = list(queries)

    async def worker(session):
        nonlocal errors
        while queue and time.perf_counter() < stop_at:
            q = queue.pop()
            t0 = time.perf_counter()
            response = await session.get(f"{url}/api/search", params={"q": q, "k": 10})
            latencies.append(time.perf_counter() - t0)
            errors += response.status_code != 200

    async with httpx.AsyncClient(timeout=60) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(clients)))
        wall = time.perf_counter() - t0
    return latencies, errors, wall


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=None)
    p.add_argument("--serve_args", default="", help="arguments of kaleido-serve when --url is not given")
    p.add_argument("--demo_out", default=None, help="a demo output folder: serve its summary.json['serve'] args")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--clients", default="1,4,8")
    p.add_argument("--requests", type=int, default=200, help="requests per client count (at most)")
    p.add_argument("--seconds", type=float, default=30.0, help="time per client count (at most)")
    p.add_argument("--json", default=None)
    flags = p.parse_args(argv)

    server = None
    url = flags.url
    if url is None:
        url = f"http://127.0.0.1:{flags.port}"
        args = shlex.split(flags.serve_args)
        if flags.demo_out:
            with open(os.path.join(flags.demo_out, "summary.json"), encoding="utf-8") as f:
                args = json.load(f)["serve"]["args"] + args
        cmd = [sys.executable, "-m", "kaleido_tf.apps.serve", "--port", str(flags.port), *args]
        server = subprocess.Popen(cmd)
    host = urllib.parse.urlparse(url).hostname
    if not (host == "localhost" or ipaddress.ip_address(host).is_loopback):
        raise SystemExit(f"serve_load: {url} is not a loopback address; this load test only runs on loopback")
    try:
        with httpx.Client(timeout=60) as client:
            for _ in range(600):
                try:
                    if client.get(f"{url}/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server is not None and server.poll() is not None:
                    raise SystemExit("serve_load: kaleido-serve exited before answering")
                time.sleep(0.5)
            health = client.get(f"{url}/api/health").json()
            queries = _queries(client, url, flags.requests)
        rows = []
        print(f"text search over {health['products']} products at {url}")
        print("| clients | requests | errors | queries/s | median ms | p95 ms |")
        print("|---|---|---|---|---|---|")
        for clients in [int(c) for c in flags.clients.split(",")]:
            latencies, errors, wall = asyncio.run(_run(url, queries, clients, flags.seconds))
            row = {
                "clients": clients,
                "requests": len(latencies),
                "errors": errors,
                "qps": len(latencies) / wall,
                "median_ms": 1000 * statistics.median(latencies),
                "p95_ms": 1000 * _percentile(latencies, 0.95),
            }
            rows.append(row)
            print(
                f"| {clients} | {row['requests']} | {errors} | {row['qps']:.1f} | {row['median_ms']:.1f} |"
                f" {row['p95_ms']:.1f} |",
                flush=True,
            )
        if flags.json:
            with open(flags.json, "w") as f:
                json.dump({"url": url, "products": health["products"], "rows": rows}, f, indent=1)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
