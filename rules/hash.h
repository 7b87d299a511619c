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

// 0 marks empty slots, so hashes stored as keys are never 0.
constexpr std::uint64_t nonzero(std::uint64_t h) noexcept { return h == 0 ? 1 : h; }

// A seeded, nonzero hash of two words (an address's two halves) and a tag: the first word is
// mixed with the seed before the second joins, so pairs that collide cannot be chosen without
// the seed.
constexpr std::uint64_t hash_words(std::uint64_t a, std::uint64_t b, std::uint64_t seed,
                                   std::uint64_t tag) noexcept {
  return nonzero(mix64(mix64(a ^ seed) ^ b ^ tag));
}

// One multiply per 8 bytes, then a full finaliser: these are short strings (user names,
// session ids) hashed on the per-event path. The tail is read with fixed-size loads (the last
// 8 bytes again when the string is that long, else two overlapping 4-byte or three 1-byte
// reads), so no variable-length copy (a libc call) is made.
inline std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed) noexcept {
  constexpr std::uint64_t k = 0x9e3779b97f4a7c15ULL;
  const std::size_t n = s.size();
  const char* p = s.data();
  std::uint64_t h = seed ^ (n * k);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
  }
  if (i < n) {
    std::uint64_t w;
    if (n >= 8) {
      std::memcpy(&w, p + n - 8, 8);  // overlaps bytes already mixed in; still a function of s
    } else if (n >= 4) {
      std::uint32_t a, b;
      std::memcpy(&a, p, 4);
      std::memcpy(&b, p + n - 4, 4);
      w = (static_cast<std::uint64_t>(a) << 32) | b;
    } else {
      w = (static_cast<std::uint64_t>(static_cast<unsigned char>(p[0])) << 16) |
          (static_cast<std::uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8) |
          static_cast<unsigned char>(p[n - 1]);
    }
    h = (h ^ w) * k;
  }
  return mix64(h);
}

}  // namespace authwall::rules
