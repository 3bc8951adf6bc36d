#include "sim/faults.h"

#include "common/assert.h"

namespace settle::sim {
namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Faults::Faults(std::uint64_t seed, bool enabled, FaultOptions options) : enabled_(enabled), options_(options) {
  std::uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

std::uint64_t Faults::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

std::uint64_t Faults::below(std::uint64_t n) {
  SETTLE_ASSERT(n > 0, "Faults::below(0)");
  return next() % n;
}

bool Faults::coin(double p) {
  // 53 random bits as a fraction in [0, 1).
  return static_cast<double>(next() >> 11) * 0x1.0p-53 < p;
}

bool Faults::inject(double p, const char* name) {
  if (!enabled_) return false;
  if (!coin(p)) return false;
  ++counts_[name];
  return true;
}

}  // namespace settle::sim
