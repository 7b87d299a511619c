#include "actions/firewall_backend.h"

namespace authwall::actions {

void prefix_range(const IpPrefix& prefix, IpAddress& first, IpAddress& last) noexcept {
  first = prefix.network;
  last = prefix.network;
  const int width = prefix.network.bit_length();
  for (int bit = prefix.length; bit < width; ++bit) {
    last.bytes[static_cast<std::size_t>(bit / 8)] |= static_cast<std::uint8_t>(0x80u >> (bit % 8));
  }
}

bool range_to_prefix(const IpAddress& first, const IpAddress& last, IpPrefix& out) noexcept {
  if (first.is_v4 != last.is_v4) return false;
  const int width = first.bit_length();
  // The prefix length is the number of leading bits first and last share; below it, first
  // must be all zeros and last all ones.
  int length = 0;
  while (length < width) {
    const auto byte = static_cast<std::size_t>(length / 8);
    const auto mask = static_cast<std::uint8_t>(0x80u >> (length % 8));
    if ((first.bytes[byte] & mask) != (last.bytes[byte] & mask)) break;
    ++length;
  }
  for (int bit = length; bit < width; ++bit) {
    const auto byte = static_cast<std::size_t>(bit / 8);
    const auto mask = static_cast<std::uint8_t>(0x80u >> (bit % 8));
    if ((first.bytes[byte] & mask) != 0 || (last.bytes[byte] & mask) == 0) return false;
  }
  out = IpPrefix::of(first, length);
  return true;
}

}  // namespace authwall::actions
