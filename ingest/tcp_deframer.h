#pragma once
// RFC 6587 TCP deframer: a byte stream from one syslog TCP connection -> one message per frame.
//
// Framing is detected per frame, as rsyslog's imtcp does:
//   - octet counting ("LEN SP MSG"): the frame starts with a digit, the count runs up to SP,
//     and exactly LEN bytes follow (rsyslog counts its trailing LF in LEN);
//   - non-transparent framing: anything else runs up to LF. NUL also ends such a frame
//     (RFC 6587 3.4.2 lists it as a trailer some senders use; rsyslog and Postfix never put a
//     raw NUL inside a message, so treating it as a terminator cannot split a real line).
//     A digit run that is not followed by SP ("2026-11-28T10:00:00 mx1 ...") is the start of a
//     non-transparent frame, not a count.
// CR, LF and NUL between frames are skipped, and trailing CR/LF/NUL are stripped from every
// delivered frame; empty frames are never delivered.
//
// Limits and errors:
//   - A frame longer than `max_frame` is never buffered. A non-transparent one is skipped up to
//     its terminator and counted in `oversize_drops`; the stream stays usable.
//   - A count larger than `max_frame` or of 0 (judged when its SP arrives: digits followed by
//     anything else start a line), or a digit run longer than any count could be (20 digits),
//     puts the deframer in the terminal `failed()` state: a count cannot be trusted
//     to find the next frame, so the connection must be closed (later bytes are ignored and
//     counted in `ignored_bytes`). Nothing is ever allocated on a count's say-so: a counted frame
//     is buffered only as its bytes actually arrive, and never beyond `max_frame`.
//
// Ownership and lifetime: the view handed to `on_frame` points either into the `bytes` given to
// `feed()` (a frame that arrived whole: zero copy) or into the deframer's own buffer (a frame
// that spanned reads). Either way it is valid only during that `on_frame` call. The buffer
// holds only the bytes of one partial frame; it grows to the largest frame that spanned reads
// (at most `max_frame`) and is then reused, so steady state allocates nothing.
//
// Threading: one deframer per connection, used by one thread at a time (no internal locking).
// `on_frame` must not call back into the same deframer.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ingest/syslog_parser.h"

namespace authwall::ingest {

enum class TcpDeframerError : std::uint8_t {
  none = 0,
  count_too_large,  // octet count above max_frame, or a digit run longer than any count (20)
  bad_count,        // octet count of 0
};

// Stable short names for metrics labels and logs ("count_too_large", ...).
std::string_view to_string(TcpDeframerError e) noexcept;

struct TcpDeframerCounters {
  std::uint64_t frames = 0;          // frames delivered to on_frame
  std::uint64_t octet_counted = 0;   // ... of which were octet-counted
  std::uint64_t oversize_drops = 0;  // non-transparent frames longer than max_frame, skipped
  std::uint64_t truncated = 0;       // partial frames discarded by finish() (counted frame cut off)
  std::uint64_t framing_errors = 0;  // 1 once the stream has failed (see TcpDeframerError)
  std::uint64_t ignored_bytes = 0;   // bytes fed after the failure, not looked at
};

class TcpDeframer {
 public:
  explicit TcpDeframer(std::size_t max_frame = kMaxSyslogMessageLength) noexcept
      : max_frame_(max_frame == 0 ? 1 : max_frame) {}

  // Consumes all of `bytes` (one read from the socket), calling `on_frame(std::string_view)`
  // once per complete frame, in order. The tail of a frame that is not complete yet is copied
  // into the deframer and completed by later calls. Returns false once the stream has failed:
  // the caller should then close the connection.
  template <class OnFrame>
  bool feed(std::string_view bytes, OnFrame&& on_frame) {
    std::string_view frame;
    while (next_frame(bytes, frame)) on_frame(frame);
    return !failed();
  }

  // End of stream. A pending non-transparent frame without its final LF is delivered (senders
  // may close right after the last message); a cut-off octet-counted frame or count is
  // discarded and counted in `truncated`. The deframer is then ready for a new stream
  // (counters are kept; `reset()` clears the failure too).
  template <class OnFrame>
  void finish(OnFrame&& on_frame) {
    std::string_view frame;
    if (finish_frame(frame)) on_frame(frame);
  }

  // The pull form of feed(): takes bytes from the front of `bytes` until one frame is complete
  // (returns true, `frame` set, `bytes` = the unconsumed rest) or `bytes` is used up (returns
  // false, `bytes` empty). `frame` stays valid until the next call on this deframer or until
  // the storage behind `bytes` changes, whichever comes first.
  bool next_frame(std::string_view& bytes, std::string_view& frame) noexcept;
  // The pull form of finish(): true when a last frame is delivered in `frame`.
  bool finish_frame(std::string_view& frame) noexcept;

  bool failed() const noexcept { return mode_ == Mode::failed; }
  TcpDeframerError error() const noexcept { return error_; }
  const TcpDeframerCounters& counters() const noexcept { return counters_; }
  std::size_t max_frame() const noexcept { return max_frame_; }
  // Bytes of the partial frame currently held (0 between frames).
  std::size_t pending_bytes() const noexcept { return release_buffer_ ? 0 : buffer_.size(); }
  // Back to the initial state for a new stream; keeps counters and the buffer's capacity.
  void reset() noexcept;

 private:
  enum class Mode : std::uint8_t {
    frame_start,    // between frames
    count,          // reading the digits of an octet count (or of a line that starts with digits)
    counted_body,   // reading `remaining_` more bytes of an octet-counted frame
    line,           // reading a non-transparent frame up to LF/NUL
    skip_line,      // dropping an oversize non-transparent frame up to LF/NUL
    failed,
  };

  bool deliver(std::string_view raw, std::string_view& frame) noexcept;
  void append(const char* data, std::size_t size) noexcept;
  void fail(TcpDeframerError e) noexcept;

  std::size_t max_frame_;
  Mode mode_ = Mode::frame_start;
  TcpDeframerError error_ = TcpDeframerError::none;
  bool release_buffer_ = false;  // the last delivered frame lives in buffer_: clear it next call
  std::size_t count_ = 0;        // octet count being read
  std::size_t count_digits_ = 0;
  std::size_t remaining_ = 0;    // bytes still missing from the counted frame
  std::vector<char> buffer_;     // the partial frame that spans reads
  TcpDeframerCounters counters_;
};

}  // namespace authwall::ingest
