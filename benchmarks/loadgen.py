"""A small closed-loop HTTP load generator, run in its own process by benchmarks/service.py.

Usage:
    python benchmarks/loadgen.py URL BODIES.json --concurrency C --requests N [--header K:V]

Each of C threads keeps one keep-alive connection and sends POST requests with the JSON bodies
(cycled) until N requests have been sent in total. Prints one JSON line of results.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import threading
import time
from urllib.parse import urlsplit


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("bodies")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--passages-per-request", type=int, default=1)
    args = parser.parse_args()
    url = urlsplit(args.url)
    with open(args.bodies, encoding="utf-8") as fh:
        bodies = [json.dumps(b).encode() for b in json.load(fh)]
    counter = itertools.count()
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        while (i := next(counter)) < args.requests:
            body = bodies[i % len(bodies)]
            started = time.perf_counter()
            try:
                conn.request("POST", url.path, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            elapsed = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    failures[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return 1000 * lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    print(
        json.dumps(
            {
                "requests": len(lat),
                "failures": failures[0],
                "seconds": wall,
                "rps": len(lat) / wall,
                "passages_per_s": len(lat) * args.passages_per_request / wall,
                "p50_ms": pct(0.50),
                "p95_ms": pct(0.95),
                "p99_ms": pct(0.99),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
