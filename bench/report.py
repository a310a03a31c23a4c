#!/usr/bin/env python3
"""Turns the JSON lines of bench/run.sh into Markdown tables of medians and ratios.

Each input line is one baton-bench --json result with two more keys: "label"
(baton, baton-consume, baton-stream, baton-shared — against the durable batond —, the same with
-mem — against batond --durability=none —, echo, etcd-fsync, etcd-nofsync, redis-mem, redis-aof,
beanstalkd-mem, beanstalkd-fsync) and "run"; a failed run has "failed": true instead of
measurements. Lock cells (uncontended, contended) and queue cells get tables
of their own.
"""

import argparse
import json
import statistics
import sys

LABELS = ["baton", "baton-consume", "baton-stream", "baton-shared", "baton-mem",
          "baton-consume-mem", "baton-stream-mem", "baton-shared-mem", "echo", "etcd-fsync",
          "etcd-nofsync", "redis-mem", "redis-aof", "beanstalkd-mem", "beanstalkd-fsync",
          # bench/cluster.sh
          "baton-cluster", "baton-stream-cluster", "etcd-cluster", "baton-single",
          "baton-stream-single"]
TITLES = {
    "baton": "baton",
    "baton-consume": "baton Consume stream",
    "baton-stream": "baton stream per client",
    "baton-shared": "baton one shared stream",
    "baton-mem": "baton in-memory",
    "baton-consume-mem": "baton Consume in-memory",
    "baton-stream-mem": "baton stream per client in-memory",
    "baton-shared-mem": "baton one shared stream in-memory",
    "echo": "gRPC echo",
    "etcd-fsync": "etcd fsync",
    "etcd-nofsync": "etcd no-fsync",
    "redis-mem": "redis in-memory",
    "redis-aof": "redis AOF always",
    "beanstalkd-mem": "beanstalkd in-memory",
    "beanstalkd-fsync": "beanstalkd binlog fsync",
    "baton-cluster": "baton 3 nodes",
    "baton-stream-cluster": "baton 3 nodes, stream per client",
    "etcd-cluster": "etcd 3 nodes",
    "baton-single": "baton 1 node",
    "baton-stream-single": "baton 1 node, stream per client",
}
# Ratios shown, (ours, peer, column title): our rate over the peer's, where
# both ran.
LOCK_RATIOS = [("baton", "baton-mem", "durable/in-memory"),
               ("baton-shared", "baton-shared-mem", "shared stream durable/in-memory"),
               ("baton", "echo", "baton/echo"), ("baton", "etcd-fsync", "baton/etcd fsync"),
               ("baton", "etcd-nofsync", "baton/etcd no-fsync"),
               ("baton-stream", "redis-mem", "baton stream per client/redis"),
               ("baton-shared", "redis-mem", "baton shared stream/redis"),
               ("baton-shared", "redis-aof", "baton shared stream/redis AOF")]
QUEUE_RATIOS = [("baton", "baton-mem", "durable/in-memory"),
                ("baton-shared", "redis-aof", "baton shared stream/redis AOF"),
                ("baton", "beanstalkd-mem", "baton/beanstalkd in-memory"),
                ("baton", "beanstalkd-fsync", "baton/beanstalkd fsync"),
                ("baton-consume", "beanstalkd-mem", "baton Consume/beanstalkd in-memory"),
                ("baton-consume", "beanstalkd-fsync", "baton Consume/beanstalkd fsync"),
                ("baton-stream", "beanstalkd-mem", "baton stream per client/beanstalkd in-memory"),
                ("baton-shared", "beanstalkd-mem", "baton shared stream/beanstalkd in-memory"),
                ("baton-mem", "beanstalkd-mem", "baton in-memory/beanstalkd in-memory"),
                ("baton-stream-mem", "beanstalkd-mem",
                 "baton stream per client in-memory/beanstalkd in-memory")]


# bench/cluster.sh (--cluster): every server durable, in network namespaces.
CLUSTER_RATIOS = [("baton-cluster", "etcd-cluster", "baton/etcd, 3 nodes"),
                  ("baton-stream-cluster", "etcd-cluster", "baton stream/etcd, 3 nodes"),
                  ("baton-cluster", "baton-single", "baton 3 nodes/1 node"),
                  ("baton-stream-cluster", "baton-stream-single", "baton stream 3 nodes/1 node")]


def load(path):
    cells = {}  # (workload, clients) -> label -> [results]
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            # run.sh names the cell (queue-batch runs the queue workload).
            key = (r.get("cell", r["workload"]), r["clients"])
            cells.setdefault(key, {}).setdefault(r["label"], []).append(r)
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


def print_rates(cells, keys, ratio_triples, contended_of):
    labels = [l for l in LABELS if any(l in cells[k] for k in keys)]
    ratios = [r for r in ratio_triples if r[0] in labels and r[1] in labels]
    header = ["workload", "clients"] + [TITLES[l] for l in labels] + [t for _, _, t in ratios]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for key in keys:
        row = [key[0], str(key[1])]
        row += [fmt_rate(cells[key].get(l), contended_of(key)) for l in labels]
        for ours, peer, _ in ratios:
            mine = median_of(cells[key].get(ours, []), "rate")
            other = median_of(cells[key].get(peer, []), "rate")
            row.append(f"{mine / other:.2f}x" if mine and other else "–")
        print("| " + " | ".join(row) + " |")


def print_latencies(cells, keys):
    labels = [l for l in LABELS if any(l in cells[k] for k in keys)]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--seconds", default="?")
    parser.add_argument("--runs", default="?")
    parser.add_argument("--cluster", action="store_true",
                        help="results of bench/cluster.sh: the cluster ratios")
    args = parser.parse_args()
    cells = load(args.results)
    order = {"uncontended": 0, "contended": 1}
    lock_keys = sorted((k for k in cells if k[0] in order), key=lambda k: (order[k[0]], k[1]))
    queue_keys = sorted((k for k in cells if k[0] in ("queue", "queue-batch")),
                        key=lambda k: (k[0], k[1]))

    if lock_keys:
        print(f"Rates: medians of {args.runs} runs of {args.seconds} s. Uncontended: cycles/s "
              "(acquire + release; echo: two calls; redis: SET NX PX + compare-and-delete "
              "script). Contended: handoffs/s (fairness max/min; redis polls every 1 ms).\n")
        print_rates(cells, lock_keys, CLUSTER_RATIOS if args.cluster else LOCK_RATIOS,
                    lambda k: k[0] == "contended")
        print("\nLatency, microseconds, p50 / p99 / p99.9 (medians over runs): of a cycle when "
              "uncontended, of an acquire (the wait in line) when contended.\n")
        print_latencies(cells, lock_keys)

    if queue_keys:
        def values_of(key, cell):
            return sorted({r.get(key) for k in queue_keys if k[0] == cell for rs in cells[k].values()
                           for r in rs if r.get(key) is not None})
        backlog = ", ".join(str(b) for b in values_of("backlog", "queue")) or "?"
        batch_backlog = ", ".join(str(b) for b in values_of("backlog", "queue-batch")) or "?"
        batch = ", ".join(str(b) for b in values_of("batch", "queue-batch")) or "?"
        if lock_keys:
            print()
        print(f"Queue: items/s got by consumers, medians of {args.runs} runs of {args.seconds} s "
              f"(fairness max/min items per consumer); clients = P producers + P consumers, "
              f"backlog {backlog} item(s) per producer; queue-batch: items put {batch} at a "
              f"time and got up to {batch} at a time with the acks riding on the next get "
              f"(beanstalkd: {batch} commands pipelined per write; redis: one LPUSH of {batch}), "
              f"backlog {batch_backlog}.\n")
        print_rates(cells, queue_keys, QUEUE_RATIOS, lambda k: True)
        print("\nQueue latency, microseconds, p50 / p99 / p99.9 (medians over runs): from just "
              "before the put to the return of the get.\n")
        print_latencies(cells, queue_keys)

    failed = sum(1 for c in cells.values() for rs in c.values() for r in rs if r.get("failed"))
    if failed:
        print(f"\n{failed} run(s) failed; see the log above.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
