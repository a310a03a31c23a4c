// MetricsHttp: the Prometheus endpoint, `GET /metrics` over HTTP on a
// listener of its own (--metrics_listen), served by civetweb, and `GET
// /healthz`: 200 "serving" or 503 "not serving", as grpc.health.v1 says for
// the whole server, for probes that cannot speak gRPC over TLS (Kubernetes'
// gRPC probes speak plaintext only). Anything else is 404. The page is
// written at each scrape by the `write` function given.
//
// Threading: Start and the destructor on the main thread; `write` runs on
// civetweb's worker thread (one), never on a shard's loop.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "metrics/text_writer.h"

struct mg_context;
struct mg_connection;

namespace baton {

class MetricsHttp {
 public:
  using Write = std::function<void(metrics::TextWriter&)>;
  using Serving = std::function<bool()>;

  // Listens on `listen` (HOST:PORT; port 0 picks one). Errors:
  // UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttp>> Start(const std::string& listen, Write write,
                                                            Serving serving);
  ~MetricsHttp();  // stops serving; waits for a scrape in progress

  int port() const { return port_; }

 private:
  MetricsHttp(Write write, Serving serving)
      : write_(std::move(write)), serving_(std::move(serving)) {}
  static int Handle(mg_connection* conn, void* self);
  static int HandleHealth(mg_connection* conn, void* self);

  Write write_;
  Serving serving_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace baton
