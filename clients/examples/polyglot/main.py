"""Three languages, one server: a Python producer feeds a Go consumer while a
Node service waits on the same event.

  * go-consumer (Go, clients/go): waits on <prefix>/open, takes the orders
    from <prefix>/orders, acknowledges each, publishes the total as the
    future <prefix>/total;
  * node-service (Node, clients/node): waits on the same <prefix>/open,
    then awaits <prefix>/total and answers with the future <prefix>/receipt;
  * producer.py (Python, clients/python): waits until both wait on the
    event, sets it (waking both at once), puts the orders, joins the queue
    and checks the total and the receipt;
  * and the `baton` command line tool reads the total once more.

Needs the Go consumer and the baton tool built (test.sh does it; else this
program runs `go build` into ../.bin) and `npm ci` done in node-service.

    python main.py --addr 127.0.0.1:7411
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import exlib  # noqa: E402
from exlib import check  # noqa: E402

import baton  # noqa: E402

BIN = HERE.parent / ".bin"
COUNT = 20


def go_binary(name: str, module_dir: Path, package: str) -> Path:
    """BIN/name, built with `go build` if it is not there yet."""
    out = BIN / name
    if not out.exists():
        go = shutil.which("go")
        check(go is not None, f"{out} is missing and there is no `go` to build it")
        print(f"building {out} ...", flush=True)
        subprocess.run([go, "build", "-p", "1", "-o", str(out), package], cwd=module_dir, check=True)
    return out


async def run(args) -> str:
    consumer_bin = go_binary("polyglot-go-consumer", HERE / "go-consumer", ".")
    baton_cli = go_binary("baton", HERE.parent.parent / "go", "./cmd/baton")
    node = shutil.which("node")
    check(node is not None, "node is not installed")
    check((HERE / "node-service" / "node_modules" / "baton-client").exists(),
          "run `npm ci` in polyglot/node-service first (and build clients/node)")

    prefix_args = ["--addr", args.addr, "--prefix", args.prefix]
    go = await exlib.spawn_cmd("go", [str(consumer_bin), *prefix_args, "--count", str(COUNT)])
    nodejs = await exlib.spawn_cmd("node", [node, "service.mjs", *prefix_args], cwd=HERE / "node-service")
    producer = await exlib.spawn("python", HERE / "producer.py", *exlib.common_args(args),
                                 "--count", str(COUNT), "--waiters", "2")
    for child in (producer, go, nodejs):
        await child.wait_ok(timeout=60)
    facts = await producer.report("total")

    # A fourth client: the command line tool.
    cli = await asyncio.create_subprocess_exec(
        str(baton_cli), "--addr", args.addr, "future", "await", f"{args.prefix}/total",
        stdout=asyncio.subprocess.PIPE)
    cli_out, _ = await cli.communicate()
    print(f"baton future await {args.prefix}/total -> {cli_out.decode().strip()}")

    async with baton.Client(args.addr, label="polyglot main") as client:
        await exlib.check_nothing_held(client, args.prefix)

    check(facts["woken"] == 2, f"Events/Set woke {facts['woken']} processes, expected the Go and Node ones")
    check(facts["total"] == facts["expected"], f"Go's total {facts['total']} != the {facts['expected']} cents put")
    check(facts["receipt"].startswith(f"receipt: {facts['expected']} cents"), f"Node's receipt {facts['receipt']!r}")
    check(cli.returncode == 0 and cli_out.decode().strip() == str(facts["expected"]), f"the baton tool said {cli_out!r}")
    check(sum(1 for line in go.lines if line.startswith("order ")) == COUNT, "the Go consumer did not log every order")
    check(any("issued by node" in line for line in nodejs.lines), "the Node service did not print its receipt")
    return f"Python put {COUNT} orders, Go totalled {facts['total']} cents, Node issued the receipt; one event woke both"


if __name__ == "__main__":
    exlib.main(run(exlib.parser("polyglot", __doc__).parse_args()), "polyglot")
