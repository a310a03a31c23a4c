// Loading the Baton protos and creating one gRPC stub per service, all on one
// channel.
//
// The protos are loaded at run time by @grpc/proto-loader from the package's
// proto/ folder (copied there from the repository's proto/ by scripts/gen.mjs);
// the TypeScript types in src/gen/ are generated from the same files with the
// same options, so the shapes below are exactly what the loader produces:
// 64-bit integers as decimal strings, enums as their names, defaults filled in.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

import type { AdminClient } from "./gen/baton/v1/Admin";
import type { BarriersClient } from "./gen/baton/v1/Barriers";
import type { ConditionsClient } from "./gen/baton/v1/Conditions";
import type { EventsClient } from "./gen/baton/v1/Events";
import type { FuturesClient } from "./gen/baton/v1/Futures";
import type { LocksClient } from "./gen/baton/v1/Locks";
import type { QueuesClient } from "./gen/baton/v1/Queues";
import type { SemaphoresClient } from "./gen/baton/v1/Semaphores";
import type { SessionsClient } from "./gen/baton/v1/Sessions";
import type { StreamClient } from "./gen/baton/v1/Stream";
import type { TasksClient } from "./gen/baton/v1/Tasks";
import type { TimersClient } from "./gen/baton/v1/Timers";
import type { HealthClient } from "./gen/grpc/health/v1/Health";

/** The proto files this client loads (the same list as scripts/gen.mjs). */
export const PROTO_FILES = [
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
] as const;

/** Must match the flags given to proto-loader-gen-types in scripts/gen.mjs. */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The raw gRPC stubs, one per service, sharing one channel. */
export interface Stubs {
  sessions: SessionsClient;
  locks: LocksClient;
  semaphores: SemaphoresClient;
  events: EventsClient;
  conditions: ConditionsClient;
  barriers: BarriersClient;
  queues: QueuesClient;
  futures: FuturesClient;
  tasks: TasksClient;
  timers: TimersClient;
  admin: AdminClient;
  /** The session stream (Stream/Connect). */
  stream: StreamClient;
  health: HealthClient;
}

/**
 * Finds the folder holding baton/v1/*.proto: $BATON_PROTO_DIR, else the
 * nearest proto/ folder above this file (the package's own copy).
 */
export function protoDir(): string {
  const fromEnv = process.env.BATON_PROTO_DIR;
  if (fromEnv) return fromEnv;
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, "proto");
    if (existsSync(join(candidate, "baton", "v1", "lock.proto"))) return candidate;
    if (dirname(dir) === dir) break;
  }
  throw new Error(`baton-client: no proto/baton/v1 folder above ${__dirname}; set BATON_PROTO_DIR`);
}

let cachedPackage: grpc.GrpcObject | undefined;

function loadPackage(): grpc.GrpcObject {
  if (!cachedPackage) {
    const dir = protoDir();
    const definition = protoLoader.loadSync(
      PROTO_FILES.map((f) => join(dir, f)),
      { ...LOADER_OPTIONS, includeDirs: [dir] },
    );
    cachedPackage = grpc.loadPackageDefinition(definition);
  }
  return cachedPackage;
}

type ServiceCtor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => grpc.Client;

function serviceCtor(pkg: grpc.GrpcObject, path: string): ServiceCtor {
  let node: unknown = pkg;
  for (const part of path.split(".")) node = (node as Record<string, unknown>)[part];
  if (typeof node !== "function") throw new Error(`baton-client: service ${path} missing from the protos`);
  return node as ServiceCtor;
}

/**
 * Creates the stubs on one new channel to `address`; every call of every stub
 * goes through `interceptors` (the bearer token, see auth.ts).
 */
export function createStubs(
  address: string,
  credentials: grpc.ChannelCredentials,
  channelOptions: grpc.ChannelOptions,
  interceptors: grpc.Interceptor[] = [],
): Stubs {
  const pkg = loadPackage();
  const first = new (serviceCtor(pkg, "baton.v1.Sessions"))(address, credentials, {
    ...channelOptions,
    interceptors,
  } as grpc.ClientOptions);
  const shared = { channelOverride: first.getChannel(), interceptors } as grpc.ClientOptions;
  const make = <T>(path: string): T => new (serviceCtor(pkg, path))(address, credentials, shared) as unknown as T;
  return {
    sessions: first as unknown as SessionsClient,
    locks: make("baton.v1.Locks"),
    semaphores: make("baton.v1.Semaphores"),
    events: make("baton.v1.Events"),
    conditions: make("baton.v1.Conditions"),
    barriers: make("baton.v1.Barriers"),
    queues: make("baton.v1.Queues"),
    futures: make("baton.v1.Futures"),
    tasks: make("baton.v1.Tasks"),
    timers: make("baton.v1.Timers"),
    admin: make("baton.v1.Admin"),
    stream: make("baton.v1.Stream"),
    health: make("grpc.health.v1.Health"),
  };
}
