// What build of Baton this is: its semantic version, the git commit it was
// built from, and the build type and compiler. Shown by `batond --version`,
// in the start-up log line and by Admin/ServerInfo.
//
// Threading: constants; any thread.
#pragma once

#include <string>

namespace baton {

struct BuildInfo {
  const char* version;  // the project's VERSION in CMakeLists.txt, e.g. "0.9.0"
  const char* commit;   // short git hash, "-dirty" if the tree had changes; "unknown"
  const char* build;    // e.g. "Release, GCC 12.2.0"
};

const BuildInfo& Build();

// "batond 0.9.0 (commit 1a2b3c4d5e6f, Release, GCC 12.2.0)".
std::string VersionLine(const char* program);

}  // namespace baton
