#pragma once
// Small, fast, non-cryptographic hashing for the rules stage's fixed-size tables. Keys come
// from attackers, so table seeds are per process (the engine mixes in a random seed) to keep
// collisions from being chosen in advance.
#include <cstdint>
#include <cstring>
#include <string_view>

namespace authwall::rules {

// The 64-bit finaliser of MurmurHash3: full avalanche in a few instructions.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

inline std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed) noexcept {
  std::uint64_t h = mix64(seed ^ (s.size() * 0x9e3779b97f4a7c15ULL));
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = mix64(h ^ w) * 0x9e3779b97f4a7c15ULL;
  }
  if (i < s.size()) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = mix64(h ^ w) * 0x9e3779b97f4a7c15ULL;
  }
  return mix64(h);
}

}  // namespace authwall::rules
