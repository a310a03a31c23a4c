#include "service/metrics_http.h"

#include <civetweb.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace baton {

absl::StatusOr<std::unique_ptr<MetricsHttp>> MetricsHttp::Start(const std::string& listen,
                                                                Write write, Serving serving) {
  static const bool initialised = [] {
    mg_init_library(0);
    return true;
  }();
  (void)initialised;
  std::unique_ptr<MetricsHttp> m(new MetricsHttp(std::move(write), std::move(serving)));
  // civetweb takes "HOST:PORT" for an address to bind; one worker thread:
  // Prometheus scrapes one page at a time.
  const char* options[] = {"listening_ports",    listen.c_str(), "num_threads", "1",
                           "request_timeout_ms", "10000",        nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof callbacks);
  // civetweb logs a failed bind through log_message; say it in our words.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  m->ctx_ = mg_start(&callbacks, nullptr, options);
  if (m->ctx_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen,
                                               " (--metrics_listen): the address is in use or not "
                                               "this machine's"));
  }
  mg_set_request_handler(m->ctx_, "/metrics", &MetricsHttp::Handle, m.get());
  mg_set_request_handler(m->ctx_, "/healthz", &MetricsHttp::HandleHealth, m.get());
  mg_server_port ports[4];
  int n = mg_get_server_ports(m->ctx_, 4, ports);
  if (n > 0) m->port_ = ports[0].port;
  return m;
}

MetricsHttp::~MetricsHttp() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

int MetricsHttp::Handle(mg_connection* conn, void* self) {
  const mg_request_info* req = mg_get_request_info(conn);
  if (std::strcmp(req->request_method, "GET") != 0 &&
      std::strcmp(req->request_method, "HEAD") != 0) {
    mg_send_http_error(conn, 405, "%s", "only GET /metrics");
    return 405;
  }
  metrics::TextWriter out;
  static_cast<MetricsHttp*>(self)->write_(out);
  const std::string& body = out.text();
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            body.size());
  if (std::strcmp(req->request_method, "GET") == 0) mg_write(conn, body.data(), body.size());
  return 200;
}

int MetricsHttp::HandleHealth(mg_connection* conn, void* self) {
  const mg_request_info* req = mg_get_request_info(conn);
  if (std::strcmp(req->request_method, "GET") != 0 &&
      std::strcmp(req->request_method, "HEAD") != 0) {
    mg_send_http_error(conn, 405, "%s", "only GET /healthz");
    return 405;
  }
  bool serving = static_cast<MetricsHttp*>(self)->serving_();
  const char* body = serving ? "serving\n" : "not serving\n";
  int code = serving ? 200 : 503;
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            code, serving ? "OK" : "Service Unavailable", std::strlen(body));
  if (std::strcmp(req->request_method, "GET") == 0) mg_write(conn, body, std::strlen(body));
  return code;
}

}  // namespace baton
