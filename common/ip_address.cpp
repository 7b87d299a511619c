#include "common/ip_address.h"

#include <arpa/inet.h>

#include <cstring>

namespace authwall {

bool IpAddress::parse(std::string_view text, IpAddress& out) noexcept {
  // inet_pton wants a NUL-terminated string; the longest valid text is 45 characters.
  if (text.empty() || text.size() > kMaxTextLength) return false;
  char buf[kMaxTextLength + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  out = IpAddress{};
  if (text.find(':') == std::string_view::npos) {
    out.is_v4 = true;
    return inet_pton(AF_INET, buf, out.bytes.data()) == 1;
  }
  if (inet_pton(AF_INET6, buf, out.bytes.data()) != 1) return false;
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(out.bytes.data(), kMapped, sizeof kMapped) == 0) {
    std::memmove(out.bytes.data(), out.bytes.data() + 12, 4);
    std::memset(out.bytes.data() + 4, 0, 12);
    out.is_v4 = true;
  } else {
    out.is_v4 = false;
  }
  return true;
}

std::size_t IpAddress::format(char* buf) const noexcept {
  char tmp[kMaxTextLength + 1];
  const char* r = inet_ntop(is_v4 ? AF_INET : AF_INET6, bytes.data(), tmp, sizeof tmp);
  if (r == nullptr) return 0;
  std::size_t n = std::strlen(tmp);
  std::memcpy(buf, tmp, n);
  return n;
}

std::string IpAddress::to_string() const {
  char buf[kMaxTextLength];
  return std::string(buf, format(buf));
}

IpPrefix IpPrefix::of(const IpAddress& addr, int length) noexcept {
  IpPrefix p;
  p.network = addr;
  const int width = addr.bit_length();
  if (length < 0) length = 0;
  if (length > width) length = width;
  p.length = static_cast<std::uint8_t>(length);
  const int bytes = width / 8;
  for (int i = 0; i < bytes; ++i) {
    const int bit_start = i * 8;
    if (bit_start >= length) {
      p.network.bytes[i] = 0;
    } else if (bit_start + 8 > length) {
      const int keep = length - bit_start;
      p.network.bytes[i] &= static_cast<std::uint8_t>(0xff << (8 - keep));
    }
  }
  return p;
}

bool IpPrefix::parse(std::string_view text, IpPrefix& out, bool allow_host_bits) noexcept {
  const auto slash = text.find('/');
  IpAddress addr;
  if (!IpAddress::parse(text.substr(0, slash), addr)) return false;
  int length = addr.bit_length();
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return false;
    length = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      length = length * 10 + (c - '0');
    }
    // A mapped address given with an IPv6 prefix length: translate to IPv4 width.
    if (addr.is_v4 && text.find(':') != std::string_view::npos) length -= 96;
    if (length < 0 || length > addr.bit_length()) return false;
  }
  out = of(addr, length);
  return allow_host_bits || out.network == addr;
}

bool IpPrefix::contains(const IpAddress& addr) const noexcept {
  if (addr.is_v4 != network.is_v4) return false;
  return of(addr, length).network == network;
}

std::string IpPrefix::to_string() const {
  std::string s = network.to_string();
  if (!is_single_address()) {
    s += '/';
    s += std::to_string(length);
  }
  return s;
}

bool parse_endpoint(std::string_view text, IpAddress& addr, std::uint16_t& port) noexcept {
  std::string_view host;
  std::string_view digits;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return false;
    }
    host = text.substr(1, close - 1);
    digits = text.substr(close + 2);
    if (!IpAddress::parse(host, addr) || addr.is_v4) return false;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = text.substr(0, colon);
    digits = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return false;  // IPv6 needs brackets
    if (!IpAddress::parse(host, addr)) return false;
  }
  if (digits.empty() || digits.size() > 5) return false;
  unsigned value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

}  // namespace authwall
