// MetricsHttp: the Prometheus endpoint, `GET /metrics` over HTTP on a
// listener of its own (--metrics_listen), served by civetweb. Anything else
// is 404. The page is written at each scrape by the `write` function given.
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

  // Listens on `listen` (HOST:PORT; port 0 picks one). Errors:
  // UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttp>> Start(const std::string& listen, Write write);
  ~MetricsHttp();  // stops serving; waits for a scrape in progress

  int port() const { return port_; }

 private:
  explicit MetricsHttp(Write write) : write_(std::move(write)) {}
  static int Handle(mg_connection* conn, void* self);

  Write write_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace baton
