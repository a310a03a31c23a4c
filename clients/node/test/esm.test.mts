// The package imports from an ES module too (it is compiled to CommonJS):
// named exports, classes and the client's type all resolve.
import assert from "node:assert/strict";
import { test } from "node:test";

import { BatonClient, BatonError, Status, TimeoutError } from "baton-client";

test("ESM import of the CommonJS package gives the named exports", () => {
  assert.equal(typeof BatonClient, "function");
  assert.ok(new TimeoutError("x", Status.DEADLINE_EXCEEDED) instanceof BatonError);
  assert.equal(Status.DEADLINE_EXCEEDED, 4);
});
