// CRC32C (Castagnoli polynomial, as in iSCSI, ext4, leveldb and etcd's WAL),
// the checksum of every WAL record. Uses the SSE4.2 crc32 instruction when
// the CPU has it (checked once at run time), else a table-driven software
// implementation (slicing-by-8). Both give the same values. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace baton::storage::crc32c {

// Returns the CRC32C of the concatenation of the data that produced
// `crc` and data[0, n). Extend(0, ...) starts a new checksum.
uint32_t Extend(uint32_t crc, const void* data, size_t n);

inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

namespace internal {
// The two implementations, exposed for tests. HardwareExtend REQUIRES:
// HaveHardware().
uint32_t SoftwareExtend(uint32_t crc, const void* data, size_t n);
uint32_t HardwareExtend(uint32_t crc, const void* data, size_t n);
bool HaveHardware();
}  // namespace internal

}  // namespace baton::storage::crc32c
