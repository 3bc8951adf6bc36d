// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected, init and final xor
// 0xFFFFFFFF): the checksum of iSCSI, ext4 metadata and Kafka's record
// batches. crc32c("123456789") == 0xE3069283.
//
// crc32c() picks, once per process, the SSE4.2 `crc32` instruction when the
// CPU has it and a table-driven portable version otherwise; both give the
// same value. Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace settle::bus {

std::uint32_t crc32c(const void* data, std::size_t size);
inline std::uint32_t crc32c(std::string_view data) { return crc32c(data.data(), data.size()); }

// The two implementations behind crc32c(), exposed so that tests can check
// that they agree. crc32c_hardware() may only be called when
// crc32c_hardware_available().
namespace detail {
std::uint32_t crc32c_portable(const void* data, std::size_t size);
bool crc32c_hardware_available();
std::uint32_t crc32c_hardware(const void* data, std::size_t size);
}  // namespace detail

}  // namespace settle::bus
