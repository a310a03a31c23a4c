// CRC32C against published vectors (RFC 3720 B.4 and the usual check
// value), and the hardware and software paths against each other.
#include "storage/crc32c.h"

#include <cstdint>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace baton::storage::crc32c {
namespace {

TEST(Crc32cTest, MatchesPublishedVectors) {
  EXPECT_EQ(Value("123456789"), 0xE3069283u);
  EXPECT_EQ(Value(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Value(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Value(ascending), 0x46DD794Eu);
  EXPECT_EQ(Value(descending), 0x113FDB5Cu);
  EXPECT_EQ(Value(""), 0u);
}

TEST(Crc32cTest, ExtendEqualsValueOfTheConcatenation) {
  std::string a = "hello, ", b = "write-ahead log";
  EXPECT_EQ(Extend(Value(a), b.data(), b.size()), Value(a + b));
}

TEST(Crc32cTest, SoftwareAndHardwareAgreeOnEveryLengthAndAlignment) {
  std::mt19937 rng(42);
  std::string data(300, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t start = 0; start < 8; ++start) {
    for (size_t n = 0; start + n <= data.size(); ++n) {
      uint32_t sw = internal::SoftwareExtend(0, data.data() + start, n);
      EXPECT_EQ(Extend(0, data.data() + start, n), sw) << start << " " << n;
      if (internal::HaveHardware()) {
        ASSERT_EQ(internal::HardwareExtend(0, data.data() + start, n), sw) << start << " " << n;
      }
    }
  }
}

}  // namespace
}  // namespace baton::storage::crc32c
