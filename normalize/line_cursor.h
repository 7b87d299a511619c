#pragma once
// A forward-only cursor over one log message, for the hand-written anchored templates of the
// per-daemon normalizers. Every operation is O(length consumed), never backtracks beyond the
// single position it was given, and never allocates: this is how we stay linear on untrusted
// input without a regex engine.
#include <cstddef>
#include <string_view>

#include "common/ip_address.h"

namespace authwall::normalize {

class LineCursor {
 public:
  explicit constexpr LineCursor(std::string_view text) noexcept : rest_(text) {}

  std::string_view rest() const noexcept { return rest_; }
  bool at_end() const noexcept { return rest_.empty(); }

  // Consumes `literal` if the remaining text starts with it.
  bool consume(std::string_view literal) noexcept {
    if (rest_.substr(0, literal.size()) != literal) return false;
    rest_.remove_prefix(literal.size());
    return true;
  }
  bool starts_with(std::string_view literal) const noexcept {
    return rest_.substr(0, literal.size()) == literal;
  }
  // Returns the text up to (not including) the first `delim` and consumes it and the delimiter.
  // Returns false (cursor unchanged) when `delim` does not occur.
  bool take_until(char delim, std::string_view& out) noexcept {
    const auto pos = rest_.find(delim);
    if (pos == std::string_view::npos) return false;
    out = rest_.substr(0, pos);
    rest_.remove_prefix(pos + 1);
    return true;
  }
  bool take_until(std::string_view delim, std::string_view& out) noexcept {
    const auto pos = rest_.find(delim);
    if (pos == std::string_view::npos) return false;
    out = rest_.substr(0, pos);
    rest_.remove_prefix(pos + delim.size());
    return true;
  }
  // Digits as a non-negative int (at most 9 digits).
  bool take_uint(int& out) noexcept {
    std::size_t n = 0;
    int v = 0;
    while (n < rest_.size() && n < 9 && rest_[n] >= '0' && rest_[n] <= '9') {
      v = v * 10 + (rest_[n] - '0');
      ++n;
    }
    if (n == 0) return false;
    out = v;
    rest_.remove_prefix(n);
    return true;
  }
  void skip_spaces() noexcept {
    while (!rest_.empty() && rest_.front() == ' ') rest_.remove_prefix(1);
  }
  // Returns and consumes the text up to (not including) the first `delim`, or all the rest
  // when `delim` does not occur. The delimiter itself stays. Never fails.
  std::string_view take_until_or_end(char delim) noexcept {
    const auto pos = rest_.find(delim);
    const std::string_view out = rest_.substr(0, pos);
    rest_.remove_prefix(out.size());
    return out;
  }
  // Consumes `n` bytes (at most what is left).
  void skip(std::size_t n) noexcept { rest_.remove_prefix(n < rest_.size() ? n : rest_.size()); }

 private:
  std::string_view rest_;
};

// Parses `text` as a client address (canonical form in `out`). "unknown" and anything that is
// not exactly an address yield false.
inline bool parse_client_address(std::string_view text, IpAddress& out) noexcept {
  return IpAddress::parse(text, out);
}

}  // namespace authwall::normalize
