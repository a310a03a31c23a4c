// Copies the Baton protos into this package (proto/, shipped with it) and
// generates TypeScript types for them (src/gen/, compiled by tsc).
//
// The source of truth is the repository's proto/ folder (../../proto, or
// $BATON_PROTO_DIR). An installed copy of the package has no such folder: it
// keeps the proto/ it was published with.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const source = process.env.BATON_PROTO_DIR ?? resolve(pkg, "..", "..", "proto");
const target = join(pkg, "proto");

// The files this client uses; src/grpc.ts loads the same list (PROTO_FILES).
const files = [
  "baton/v1/common.proto",
  "baton/v1/session.proto",
  "baton/v1/lock.proto",
  "baton/v1/semaphore.proto",
  "baton/v1/event.proto",
  "baton/v1/condition.proto",
  "baton/v1/barrier.proto",
  "baton/v1/queue.proto",
  "baton/v1/future.proto",
  "baton/v1/task.proto",
  "baton/v1/timer.proto",
  "baton/v1/admin.proto",
  "baton/v1/stream.proto",
  "grpc/health/v1/health.proto",
];

if (existsSync(join(source, "baton", "v1"))) {
  rmSync(target, { recursive: true, force: true });
  for (const f of files) {
    mkdirSync(dirname(join(target, f)), { recursive: true });
    cpSync(join(source, f), join(target, f));
  }
} else if (!files.every((f) => existsSync(join(target, f)))) {
  throw new Error(`no protos: neither ${source}/baton/v1 nor ${target}/baton/v1 has them`);
}
const out = join(pkg, "src", "gen");
rmSync(out, { recursive: true, force: true });
// These flags must match LOADER_OPTIONS in src/grpc.ts.
execFileSync(
  process.execPath,
  [
    join(pkg, "node_modules", "@grpc", "proto-loader", "build", "bin", "proto-loader-gen-types.js"),
    "--longs=String",
    "--enums=String",
    "--defaults",
    "--oneofs",
    "--includeComments",
    "--grpcLib=@grpc/grpc-js",
    `--includeDirs=${target}`,
    `--outDir=${out}`,
    ...files,
  ],
  { stdio: "inherit" },
);
