// batond: the Baton server. Configuration (config.h) -> server; tells
// systemd when it is ready and when it stops (sd_notify; a no-op elsewhere);
// waits for SIGINT or SIGTERM, then shuts down in order and exits 0.
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <variant>

#include "absl/synchronization/mutex.h"
#include "service/config.h"
#include "service/event_log.h"
#include "service/logging.h"
#include "service/metrics_http.h"
#include "service/rpc/server.h"
#include "service/version.h"

int main(int argc, char** argv) {
  auto loaded = baton::config::Load(argc, argv);
  if (const int* code = std::get_if<int>(&loaded)) return *code;
  baton::config::Config& config = std::get<baton::config::Config>(loaded);
  // Debian builds abseil without NDEBUG, which leaves absl::Mutex's deadlock
  // detection on: every lock gRPC takes then also updates a process-wide
  // lock graph under a global mutex (GraphCycles in a profile of batond).
  // It is a debugging aid; batond does without it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  namespace logging = baton::logging;
  logging::Init(logging::ParseLevel(config.log_level), config.log_format == "json");
  const baton::BuildInfo& build = baton::Build();
  logging::Info("batond starting")
      .Str("version", build.version)
      .Str("commit", build.commit)
      .Str("build", build.build)
      .Int("pid", getpid());
  {
    // The effective configuration, every flag (none holds a secret).
    logging::Line line(logging::Level::kInfo, "configuration");
    for (const auto& [name, value] : config.effective) line.Str(name, value);
  }

  baton::EventLog events;
  baton::rpc::ServerOptions o = config.server;
  o.restore_from = config.restore;
  o.config = config.effective;
  o.observer = &events;
  auto server = baton::rpc::Server::Start(o);
  if (!server.ok()) {
    logging::Error("cannot start").Str("error", std::string(server.status().message()));
    std::cerr << "batond: " << server.status().message() << "\n";
    return 1;
  }
  std::string host = o.listen.substr(0, o.listen.rfind(':'));
  // Tests and scripts read this exact line to learn the port.
  std::cout << "listening on " << host << ":" << (*server)->port() << std::endl;
  if (o.durability == baton::rpc::Durability::kLocal) {
    std::error_code ec;
    logging::Info("serving")
        .Str("address", host + ":" + std::to_string((*server)->port()))
        .Uint("shards", (*server)->shard_count())
        .Str("durability", "local")
        .Str("data_dir", std::filesystem::absolute(o.data_dir, ec).string())
        .Uint("snapshot_index", (*server)->restored_index())
        .Uint("replayed_entries", (*server)->replayed());
  } else {
    logging::Info("serving")
        .Str("address", host + ":" + std::to_string((*server)->port()))
        .Uint("shards", (*server)->shard_count())
        .Str("durability", "none");
    logging::Warn(
        "--durability=none: state is in memory only; everything is lost when batond stops");
  }
  if (o.tls.enabled()) {
    logging::Info("TLS")
        .Str("certificate", config.certificate.subject)
        .Str("expires", config.certificate.not_after)
        .Str("client_certificates",
             o.tls.client_ca_file.empty() ? "not requested" : "required (mutual TLS)")
        .Int("reload_s", o.tls.reload_interval.count());
  } else {
    logging::Warn(
        "plaintext: no TLS: anyone on the path can read the traffic and replay tokens; give "
        "--tls_cert and --tls_key to encrypt")
        .Str("address", o.listen);
  }
  if (config.policy != nullptr) {
    logging::Info("principals")
        .Str("policy", o.auth.policy_file)
        .Str("tokens", o.auth.tokens_file)
        .Uint("principals", config.policy->principal_count())
        .Uint("token_hashes", config.policy->token_count())
        .Str("anonymous",
             config.policy->Anonymous() != nullptr ? "allowed by the policy" : "refused")
        .Int("reload_s", o.auth.reload_interval.count());
  } else {
    logging::Warn(
        "no --auth_policy: every client that connects may call every RPC on every name and act "
        "for every session");
  }
  std::unique_ptr<baton::MetricsHttp> metrics;
  if (!config.metrics_listen.empty()) {
    baton::rpc::Server* s = server->get();
    auto m = baton::MetricsHttp::Start(
        config.metrics_listen, [s](baton::metrics::TextWriter& out) { s->WriteMetrics(out); },
        [s] { return s->serving(); });
    if (!m.ok()) {
      logging::Error("cannot start").Str("error", std::string(m.status().message()));
      std::cerr << "batond: " << m.status().message() << "\n";
      (*server)->Shutdown();
      return 1;
    }
    metrics = std::move(*m);
    std::string mhost = config.metrics_listen.substr(0, config.metrics_listen.rfind(':'));
    // Tests read this line to learn the port.
    std::cout << "metrics on http://" << mhost << ":" << metrics->port() << "/metrics" << std::endl;
    logging::Info("metrics served")
        .Str("url", "http://" + mhost + ":" + std::to_string(metrics->port()) + "/metrics");
  }
  sd_notifyf(0, "READY=1\nSTATUS=serving on %s:%d\nMAINPID=%d", host.c_str(), (*server)->port(),
             static_cast<int>(getpid()));

  int sig = 0;
  sigwait(&stop, &sig);
  sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
  metrics.reset();
  logging::Info("shutting down").Str("signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->Shutdown();
  server->reset();
  logging::Info("stopped");
  return 0;
}
