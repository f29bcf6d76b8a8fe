#!/usr/bin/env python3
"""Checkout latency benchmark (not a test), against a running store on loopback.

Signs up USERS customers, gives each a cart of two products, then places
one order per customer from CONCURRENCY threads and reports the latency of
`POST /api/v1/checkout` (p50, p90, p99, max) and the throughput. The store
needs stock for USERS units of the first two products (bench/checkout.sh
imports plenty before starting it).

Usage: bench/checkout.py [--base http://127.0.0.1:8080] [--users 200] [--concurrency 8]
bench/checkout.sh starts a release `emporium up` and runs this against it.
"""
import argparse
import json
import statistics
import threading
import time
import urllib.error
import urllib.request


def call(base, method, path, body=None, token=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def sign_up(base, email):
    password = "benchmark password 1"
    status, body = call(base, "POST", "/api/v1/auth/signup", {"email": email, "password": password, "name": "Bench"})
    assert status in (201, 409), (status, body)
    status, body = call(base, "POST", "/api/v1/auth/login", {"email": email, "password": password})
    assert status == 200, (status, body)
    return body["access_token"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", default="http://127.0.0.1:8080")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--currency", default="EUR")
    p.add_argument("--run-id", default=str(int(time.time())))
    args = p.parse_args()
    base = args.base

    _, page = call(base, "GET", "/api/v1/products?limit=2")
    products = [p["id"] for p in page["items"]]
    tokens = []
    for i in range(args.users):
        token = sign_up(base, f"bench-{args.run_id}-{i}@example.com")
        for pid in products:
            status, body = call(base, "POST", "/api/v1/cart/items", {"product_id": pid, "quantity": 1}, token)
            assert status == 200, (status, body)
        tokens.append(token)

    body = {
        "currency": args.currency,
        "shipping_address": {"name": "Bench", "line1": "1 Loop St", "city": "Localhost", "postal_code": "12345",
                             "country_code": "DE"},
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    }
    latencies, outcomes, lock = [], {}, threading.Lock()
    queue = list(enumerate(tokens))

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                i, token = queue.pop()
            started = time.perf_counter()
            status, _ = call(base, "POST", "/api/v1/checkout", body, token,
                             {"Idempotency-Key": f"bench-{args.run_id}-{i}"})
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                outcomes[status] = outcomes.get(status, 0) + 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started

    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    ms = lambda s: f"{s * 1000:.1f} ms"
    print(f"| checkouts | concurrency | outcomes | p50 | p90 | p99 | max | checkouts/s |")
    print(f"|---|---|---|---|---|---|---|---|")
    print(f"| {len(latencies)} | {args.concurrency} | {outcomes} | {ms(q[49])} | {ms(q[89])} | {ms(q[98])} "
          f"| {ms(latencies[-1])} | {len(latencies) / wall:.1f} |")


if __name__ == "__main__":
    main()
