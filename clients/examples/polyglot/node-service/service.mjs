// The Node side of the polyglot example: a "receipt service". It waits on the
// event <prefix>/open, the same event the Go consumer waits on (set by the
// Python producer), then awaits the total the Go consumer publishes as the
// future <prefix>/total, and answers with a receipt: the future
// <prefix>/receipt.
//
//   node service.mjs --addr 127.0.0.1:7411 --prefix examples/polyglot/demo
import { parseArgs } from "node:util";
import { BatonClient } from "baton-client";

const { values } = parseArgs({
  options: {
    addr: { type: "string", default: process.env.BATON_ADDR ?? "127.0.0.1:7411" },
    prefix: { type: "string", default: "examples/polyglot/demo" },
  },
});
const prefix = values.prefix;
const client = new BatonClient(values.addr, { label: "polyglot node-service" });
try {
  console.log("waiting for the shop to open");
  await client.event(`${prefix}/open`).wait({ timeoutMs: 60_000 });
  const openedAt = Date.now();
  console.log("open: waiting for the total");
  const total = (await client.future(`${prefix}/total`).result({ timeoutMs: 60_000 })).toString();
  const receipt = `receipt: ${total} cents, issued by node ${process.version} ${Date.now() - openedAt} ms after opening`;
  await client.future(`${prefix}/receipt`).setResult(receipt);
  console.log(receipt);
} finally {
  await client.close();
}
