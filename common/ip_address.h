#pragma once
// IP addresses and prefixes as plain values, shared by every stage.
//
// Parsing is linear, never allocates and never throws: it is used on untrusted log text.
// IPv4-mapped IPv6 (`::ffff:192.0.2.1`) is canonicalised to IPv4, so one client is one key.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace authwall {

struct IpAddress {
  // IPv4 uses bytes[0..3]; the rest stays zero.
  std::array<std::uint8_t, 16> bytes{};
  bool is_v4 = true;

  // Accepts dotted-quad IPv4 and RFC 4291 IPv6 text (no zone id, no brackets).
  // Returns false, leaving `out` unspecified, for anything else.
  static bool parse(std::string_view text, IpAddress& out) noexcept;

  // Maximum length of the canonical text form (INET6_ADDRSTRLEN - 1).
  static constexpr std::size_t kMaxTextLength = 45;
  // Writes the canonical form (dotted quad, or RFC 5952 lower-case compressed IPv6) into
  // `buf` (at least kMaxTextLength bytes) and returns its length.
  std::size_t format(char* buf) const noexcept;
  std::string to_string() const;

  int bit_length() const noexcept { return is_v4 ? 32 : 128; }
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// An address with a prefix length; the host bits are always zero.
struct IpPrefix {
  IpAddress network;
  std::uint8_t length = 32;

  // Masks `addr` to `length` bits (clamped to the address family's width).
  static IpPrefix of(const IpAddress& addr, int length) noexcept;
  // "192.0.2.0/24", "2001:db8::/64" or a bare address (full length). Host bits must be zero
  // unless `allow_host_bits` is set, in which case they are masked off.
  static bool parse(std::string_view text, IpPrefix& out, bool allow_host_bits = false) noexcept;

  bool contains(const IpAddress& addr) const noexcept;
  bool is_single_address() const noexcept { return length == network.bit_length(); }
  // A bare address for a full-length prefix, otherwise "network/length".
  std::string to_string() const;
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

// "127.0.0.1:5514", "[::1]:5514" -> address and port (1..65535). False for anything else.
bool parse_endpoint(std::string_view text, IpAddress& addr, std::uint16_t& port) noexcept;

}  // namespace authwall
