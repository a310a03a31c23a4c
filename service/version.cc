#include "service/version.h"

#include "absl/strings/str_cat.h"
#include "version_stamp.h"  // generated at build time: BATON_GIT_COMMIT

namespace baton {

const BuildInfo& Build() {
  static const BuildInfo info{
      BATON_VERSION,
      BATON_GIT_COMMIT,
      BATON_BUILD_TYPE ", " BATON_COMPILER,
  };
  return info;
}

std::string VersionLine(const char* program) {
  const BuildInfo& b = Build();
  return absl::StrCat(program, " ", b.version, " (commit ", b.commit, ", ", b.build, ")");
}

}  // namespace baton
