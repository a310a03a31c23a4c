#!/usr/bin/env python3
"""Turns the JSON lines of bench/run.sh into Markdown tables of medians and ratios.

Each input line is one baton-bench --json result with two more keys: "label"
(baton, echo, etcd-fsync, etcd-nofsync) and "run"; a failed run has
"failed": true instead of measurements.
"""

import argparse
import json
import statistics
import sys

LABELS = ["baton", "echo", "etcd-fsync", "etcd-nofsync"]
TITLES = {
    "baton": "baton",
    "echo": "gRPC echo",
    "etcd-fsync": "etcd fsync",
    "etcd-nofsync": "etcd no-fsync",
}
# Ratios shown: baton's rate over each peer's.
RATIOS = [("echo", "baton/echo"), ("etcd-fsync", "baton/etcd fsync"),
          ("etcd-nofsync", "baton/etcd no-fsync")]


def load(path):
    cells = {}  # (workload, clients) -> label -> [results]
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            cells.setdefault((r["workload"], r["clients"]), {}).setdefault(r["label"], []).append(r)
    return cells


def median_of(results, key):
    values = [r[key] for r in results if not r.get("failed") and r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt_rate(results, contended):
    if not results:
        return "–"
    rate = median_of(results, "rate")
    if rate is None:
        return "failed"
    text = f"{rate:,.0f}"
    if contended:
        fairness = median_of(results, "fairness")
        text += f" ({fairness:.2f})" if fairness is not None else " (inf)"
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--seconds", default="?")
    parser.add_argument("--runs", default="?")
    args = parser.parse_args()
    cells = load(args.results)
    order = {"uncontended": 0, "contended": 1}
    keys = sorted(cells, key=lambda k: (order.get(k[0], 2), k[1]))
    labels = [l for l in LABELS if any(l in cells[k] for k in keys)]
    ratios = [(peer, title) for peer, title in RATIOS if "baton" in labels and peer in labels]

    print(f"Rates: medians of {args.runs} runs of {args.seconds} s. Uncontended: cycles/s "
          "(acquire + release; echo: two calls). Contended: handoffs/s (fairness max/min).\n")
    header = ["workload", "clients"] + [TITLES[l] for l in labels] + [t for _, t in ratios]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for key in keys:
        workload, clients = key
        contended = workload == "contended"
        row = [workload, str(clients)]
        row += [fmt_rate(cells[key].get(l), contended) for l in labels]
        baton = median_of(cells[key].get("baton", []), "rate")
        for peer, _ in ratios:
            other = median_of(cells[key].get(peer, []), "rate")
            row.append(f"{baton / other:.2f}x" if baton and other else "–")
        print("| " + " | ".join(row) + " |")

    print("\nLatency, microseconds, p50 / p99 / p99.9 (medians over runs): of a cycle when "
          "uncontended, of an acquire (the wait in line) when contended.\n")
    header = ["workload", "clients"] + [TITLES[l] for l in labels]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for key in keys:
        row = [key[0], str(key[1])]
        for l in labels:
            results = cells[key].get(l)
            p = [median_of(results or [], k) for k in ("p50_us", "p99_us", "p999_us")]
            row.append("–" if not results else "failed" if p[0] is None else
                       " / ".join(f"{v:,.0f}" for v in p))
        print("| " + " | ".join(row) + " |")

    failed = sum(1 for c in cells.values() for rs in c.values() for r in rs if r.get("failed"))
    if failed:
        print(f"\n{failed} run(s) failed; see the log above.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
