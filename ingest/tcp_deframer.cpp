#include "ingest/tcp_deframer.h"

#include <algorithm>
#include <cstring>

namespace authwall::ingest {

namespace {

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_filler(char c) noexcept { return c == '\n' || c == '\r' || c == '\0'; }

// More digits than any count we accept could have, even with leading zeros.
constexpr std::size_t kMaxCountDigits = 20;

// First LF or NUL in [p, p + n), or nullptr. memchr (vectorised by libc) finds the LF; the NUL
// search is limited to the bytes before it, so the common case costs one pass plus a short one.
const char* find_terminator(const char* p, std::size_t n) noexcept {
  const void* lf = std::memchr(p, '\n', n);
  const std::size_t limit = lf ? static_cast<std::size_t>(static_cast<const char*>(lf) - p) : n;
  const void* nul = std::memchr(p, '\0', limit);
  return static_cast<const char*>(nul ? nul : lf);
}

}  // namespace

std::string_view to_string(TcpDeframerError e) noexcept {
  switch (e) {
    case TcpDeframerError::none: return "none";
    case TcpDeframerError::count_too_large: return "count_too_large";
    case TcpDeframerError::bad_count: return "bad_count";
  }
  return "unknown";
}

void TcpDeframer::reset() noexcept {
  mode_ = Mode::frame_start;
  error_ = TcpDeframerError::none;
  release_buffer_ = false;
  buffer_.clear();
  count_ = count_digits_ = remaining_ = 0;
}

void TcpDeframer::fail(TcpDeframerError e) noexcept {
  mode_ = Mode::failed;
  error_ = e;
  ++counters_.framing_errors;
  buffer_.clear();
}

void TcpDeframer::append(const char* data, std::size_t size) noexcept {
  // Bounded by max_frame_ by every caller; geometric growth, then reuse.
  buffer_.insert(buffer_.end(), data, data + size);
}

// Strips trailing CR/LF/NUL; delivers non-empty frames. Returns whether one was delivered.
bool TcpDeframer::deliver(std::string_view raw, std::string_view& frame) noexcept {
  mode_ = Mode::frame_start;
  while (!raw.empty() && is_filler(raw.back())) raw.remove_suffix(1);
  if (raw.empty()) {
    if (!buffer_.empty() && raw.data() == buffer_.data()) buffer_.clear();
    return false;
  }
  frame = raw;
  ++counters_.frames;
  return true;
}

bool TcpDeframer::next_frame(std::string_view& bytes, std::string_view& frame) noexcept {
  if (release_buffer_) {
    buffer_.clear();
    release_buffer_ = false;
  }
  const char* const data = bytes.data();
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  // Where the current frame's bytes begin in `bytes`. A frame continued from an earlier call
  // begins at 0, its earlier part being in buffer_.
  std::size_t frame_start = 0;
  // Takes a finished frame (either a view into `bytes` or the buffered one) and consumes.
  // Returns false for a frame that was only trailers (nothing delivered, keep scanning).
  const auto finish_with = [&](std::string_view raw) noexcept {
    if (!deliver(raw, frame)) return false;
    release_buffer_ = !buffer_.empty() && raw.data() == buffer_.data();
    bytes.remove_prefix(i);
    return true;
  };

  while (true) {
    switch (mode_) {
      case Mode::failed:
        counters_.ignored_bytes += n - i;
        bytes = {};
        return false;

      case Mode::frame_start:
        while (i < n && is_filler(data[i])) ++i;
        if (i == n) {
          bytes = {};
          return false;
        }
        frame_start = i;
        if (is_digit(data[i])) {
          mode_ = Mode::count;
          count_ = count_digits_ = 0;
        } else {
          mode_ = Mode::line;
        }
        break;

      case Mode::count:
        // The value saturates above max_frame: only the SP after the digits makes them a
        // count (and a too large one an error); any other byte makes them the start of a
        // line ("1732788000.123 mx1 ...").
        while (i < n && is_digit(data[i])) {
          if (count_ <= max_frame_) count_ = count_ * 10 + static_cast<std::size_t>(data[i] - '0');
          ++i;
          if (++count_digits_ > kMaxCountDigits) {
            fail(TcpDeframerError::count_too_large);
            break;
          }
        }
        if (mode_ == Mode::failed) break;
        if (i == n) {  // the count continues in the next read: keep its digits
          append(data + frame_start, n - frame_start);
          bytes = {};
          return false;
        }
        if (data[i] == ' ') {
          if (count_ == 0) {
            fail(TcpDeframerError::bad_count);
            break;
          }
          if (count_ > max_frame_) {
            fail(TcpDeframerError::count_too_large);
            break;
          }
          ++i;
          buffer_.clear();  // drop the buffered digits: the frame is the body alone
          mode_ = Mode::counted_body;
          remaining_ = count_;
          frame_start = i;
        } else {
          mode_ = Mode::line;  // digits that start a line, not a count
        }
        break;

      case Mode::counted_body: {
        const std::size_t take = std::min(n - i, remaining_);
        if (buffer_.empty() && take == remaining_) {  // arrived whole: zero copy
          const std::string_view raw(data + i, take);
          i += take;
          ++counters_.octet_counted;
          if (finish_with(raw)) return true;
          break;
        }
        append(data + i, take);
        i += take;
        remaining_ -= take;
        if (remaining_ != 0) {
          bytes = {};
          return false;
        }
        ++counters_.octet_counted;
        if (finish_with(std::string_view(buffer_.data(), buffer_.size()))) return true;
        buffer_.clear();
        break;
      }

      case Mode::line: {
        const char* term = find_terminator(data + i, n - i);
        const std::size_t end = term ? static_cast<std::size_t>(term - data) : n;
        const std::size_t length = buffer_.size() + (end - frame_start);
        if (length > max_frame_) {
          ++counters_.oversize_drops;
          buffer_.clear();
          mode_ = Mode::skip_line;
          break;  // skip_line finds the same terminator (or consumes the rest)
        }
        if (!term) {
          append(data + frame_start, n - frame_start);
          bytes = {};
          return false;
        }
        i = end + 1;
        if (buffer_.empty()) {
          if (finish_with(std::string_view(data + frame_start, end - frame_start))) return true;
        } else {
          append(data + frame_start, end - frame_start);
          if (finish_with(std::string_view(buffer_.data(), buffer_.size()))) return true;
          buffer_.clear();
        }
        break;
      }

      case Mode::skip_line: {
        const char* term = find_terminator(data + i, n - i);
        if (!term) {
          bytes = {};
          return false;
        }
        i = static_cast<std::size_t>(term - data) + 1;
        mode_ = Mode::frame_start;
        break;
      }
    }
  }
}

bool TcpDeframer::finish_frame(std::string_view& frame) noexcept {
  if (release_buffer_) {
    buffer_.clear();
    release_buffer_ = false;
  }
  bool delivered = false;
  switch (mode_) {
    case Mode::line:
      if (deliver(std::string_view(buffer_.data(), buffer_.size()), frame)) {
        release_buffer_ = true;
        delivered = true;
      }
      break;
    case Mode::count:
    case Mode::counted_body:
      ++counters_.truncated;
      buffer_.clear();
      break;
    case Mode::frame_start:
    case Mode::skip_line:
    case Mode::failed:
      break;
  }
  if (mode_ != Mode::failed) mode_ = Mode::frame_start;
  if (!delivered) buffer_.clear();
  count_ = count_digits_ = remaining_ = 0;
  return delivered;
}

}  // namespace authwall::ingest
