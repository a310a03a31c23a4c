// batond's configuration: its flags, and where their values come from.
//
// Every flag can be given three ways; the first found wins:
//   1. on the command line: --max_sessions=5, --max-sessions 5 (dashes and
//      underscores are the same);
//   2. in the environment: BATON_MAX_SESSIONS=5;
//   3. in a TOML file named by --config FILE (or BATON_CONFIG): one key per
//      flag, `max_sessions = 5` (or max-sessions), at the top level;
// and otherwise has its default (`batond --help` lists them).
//
// Threading: Load runs once, on the main thread, before anything else.
#pragma once

#include <map>
#include <string>
#include <variant>

#include "service/rpc/server.h"

namespace baton::config {

struct Config {
  rpc::ServerOptions server;
  // --restore: a snapshot file (baton snapshot save) to start from.
  std::string restore;
  // --metrics_listen: HOST:PORT of the Prometheus endpoint ("": none).
  std::string metrics_listen;
  std::string log_level;   // debug, info, warn or error
  std::string log_format;  // text or json
  // The client listener's certificate, as checked at load (empty: no TLS).
  security::CertificateInfo certificate;
  // The policy and tokens as read at load (null: no --auth_policy).
  std::shared_ptr<const security::AccessPolicy> policy;
  // Every flag and its value in effect, by name (for the start-up log and
  // Admin/ServerInfo). Holds no secret: batond's flags carry none.
  std::map<std::string, std::string> effective;
};

// Reads the configuration. Returns it, or the code the program should exit
// with at once: 0 after --help or --version (printed to stdout), 2 after a
// bad flag, file, variable or value (why is printed to stderr, naming it).
std::variant<Config, int> Load(int argc, char** argv);

}  // namespace baton::config
