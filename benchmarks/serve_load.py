"""`qwenlong serve` under load: latency and throughput with mixed short and long requests.

    uv run python benchmarks/serve_load.py [--levels 1 4 16] [--requests-per-client 6]
        [--short-tokens 8] [--long-tokens 1024] [--long-every 4]

Builds the tiny model in a temporary folder, starts `qwenlong serve` on it in a child process
(so clients and server do not share a GIL), and at each concurrency level runs that many
clients, each sending `--requests-per-client` requests one after another. Every
`--long-every`-th request of a client asks for `--long-tokens` tokens, the others for
`--short-tokens`; every request carries its own seed (temperature 1), which is how eval and
RL clients call, and what kept requests out of each other's batches before per-request seeds.
The short requests' latency is reported on its own: it is what a long request in the same
batch used to hold up. The tiny model is random, so a request may end early at eos; the
figures count the tokens actually generated.

Prints a table, then ONE JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

SERVING = re.compile(r"serving .* at (http://\S+)")


@dataclass
class Result:
    kind: str
    """"short" or "long"."""
    seconds: float
    tokens: int
    error: str | None = None


def start_server(model_dir: Path, batch_size: int) -> tuple[subprocess.Popen[str], str]:
    """`qwenlong serve` on a free port; returns the process and its base URL once it listens."""
    cli = Path(sys.executable).parent / "qwenlong"
    command = [str(cli), "serve", str(model_dir), "--port", "0", "--batch-size", str(batch_size)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if found := SERVING.search(line):
            return process, found.group(1)
    raise SystemExit(f"the server exited with {process.wait()} before listening")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by linear interpolation (NaN for no values)."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def client(url: str, index: int, args: argparse.Namespace, out: list[Result]) -> None:
    """Send this client's requests in turn, recording latency, tokens and errors."""
    with httpx.Client(timeout=600) as http:
        for k in range(args.requests_per_client):
            long = (k + index) % args.long_every == 0
            body = {
                "messages": [{"role": "user", "content": f"client {index} request {k}: go on"}],
                "max_tokens": args.long_tokens if long else args.short_tokens,
                "temperature": 1.0,
                "seed": 1000 * index + k,
            }
            start = time.perf_counter()
            try:
                reply = http.post(url + "/chat/completions", json=body)
                seconds = time.perf_counter() - start
                if reply.status_code != 200:
                    out.append(Result("long" if long else "short", seconds, 0, reply.text[:200]))
                    continue
                tokens = reply.json()["usage"]["completion_tokens"]
                out.append(Result("long" if long else "short", seconds, tokens))
            except httpx.HTTPError as err:
                seconds = time.perf_counter() - start
                out.append(Result("long" if long else "short", seconds, 0, repr(err)))


def run_level(url: str, clients: int, args: argparse.Namespace) -> dict[str, float | int]:
    """All clients at once; figures for the level."""
    results: list[Result] = []
    threads = [
        threading.Thread(target=client, args=(url, i, args, results)) for i in range(clients)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ok = [r for r in results if r.error is None]
    every = [r.seconds for r in ok]
    short = [r.seconds for r in ok if r.kind == "short"]
    long = [r.seconds for r in ok if r.kind == "long"]
    return {
        "clients": clients,
        "requests": len(results),
        "errors": len(results) - len(ok),
        "wall_s": wall,
        "requests_per_s": len(ok) / wall,
        "tokens_per_s": sum(r.tokens for r in ok) / wall,
        "p50_s": percentile(every, 0.5),
        "p95_s": percentile(every, 0.95),
        "short_p50_s": percentile(short, 0.5),
        "short_p95_s": percentile(short, 0.95),
        "long_p50_s": percentile(long, 0.5),
        "long_mean_tokens": statistics.fmean(r.tokens for r in ok if r.kind == "long")
        if long
        else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests-per-client", type=int, default=6)
    parser.add_argument("--short-tokens", type=int, default=8)
    parser.add_argument("--long-tokens", type=int, default=1024)
    parser.add_argument("--long-every", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8, help="the server's --batch-size")
    args = parser.parse_args()

    from qwenlong.core.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny")
        process, url = start_server(model_dir, args.batch_size)
        try:
            run_level(url, 1, argparse.Namespace(**{**vars(args), "requests_per_client": 2}))
            levels = [run_level(url, clients, args) for clients in args.levels]
        finally:
            process.terminate()
            process.wait(30)

    print("clients | requests | errors | req/s | tok/s | p50 s | p95 s | short p50 | short p95")
    for level in levels:
        print(
            f"{level['clients']:7d} | {level['requests']:8d} | {level['errors']:6d} | "
            f"{level['requests_per_s']:5.2f} | {level['tokens_per_s']:5.0f} | "
            f"{level['p50_s']:5.2f} | {level['p95_s']:5.2f} | {level['short_p50_s']:9.2f} | "
            f"{level['short_p95_s']:9.2f}"
        )
    settings = {k: getattr(args, k) for k in ("short_tokens", "long_tokens", "long_every")}
    print(json.dumps({"settings": settings, "levels": levels}))


if __name__ == "__main__":
    main()
