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

// One multiply per 8 bytes, then a full finaliser: these are short strings (user names,
// session ids) hashed on the per-event path.
inline std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed) noexcept {
  constexpr std::uint64_t k = 0x9e3779b97f4a7c15ULL;
  std::uint64_t h = seed ^ (s.size() * k);
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
  }
  if (i < s.size()) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = (h ^ w) * k;
  }
  return mix64(h);
}

}  // namespace authwall::rules
