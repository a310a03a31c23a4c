// consumer ADDRESS: takes a lock on a Baton server through the installed C++
// client, prints its fencing token, and releases it.
#include <iostream>

#include "baton/baton.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer HOST:PORT\n";
    return 2;
  }
  absl::StatusOr<baton::Client> client = baton::Client::Connect(argv[1]);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  absl::StatusOr<baton::LockGuard> held = client->Lock("install-test/lock").Acquire();
  if (!held.ok()) {
    std::cerr << "acquire: " << held.status() << "\n";
    return 1;
  }
  std::cout << "fence " << held->fence() << "\n";
  return 0;
}
