#pragma once
// SyslogMessage -> AuthEvent. The dispatcher in front of the per-daemon normalizers.
//
// Safety contract (PRODUCT.md "Safety"): the client address comes only from the position the
// daemon's own format puts it in; nothing an attacker writes (HELO, addresses, user names,
// mechanisms, Dovecot user=<...>) ever yields an address. Linear time: no backtracking regex
// on untrusted input (RE2 only, for operator-supplied patterns).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/syslog_message.h"
#include "normalize/auth_event.h"

namespace authwall::normalize {

enum class NormalizeOutcome : std::uint8_t {
  event,         // `out` holds an event
  ignored,       // not ours, ordinary traffic, or an outage line: no event, nothing to report
  unrecognized,  // from postfix/dovecot and looks like a failure, but no template matched:
                 // counted and reported so a format change never fails silently
};

struct NormalizeResult {
  NormalizeOutcome outcome = NormalizeOutcome::ignored;
  // Meaningful for `event` and `unrecognized` (what metrics label the line with).
  EventSource source = EventSource::postfix;
};

// The per-daemon normalizers are pure functions of one message (thread-safe, noexcept).
// They return `ignored` quickly for messages from other programs.
NormalizeResult normalize_postfix(const ingest::SyslogMessage& msg, AuthEvent& out) noexcept;
NormalizeResult normalize_dovecot(const ingest::SyslogMessage& msg, AuthEvent& out) noexcept;

class JsonNormalizer;
class CustomPatternSet;

// The dispatcher a thread owns: Postfix, then Dovecot, then JSON messages (docs/events.md "JSON
// messages"), then the operator's custom patterns (normalize/custom_patterns.h).
//
// Not thread-safe: each thread (listener worker, `check`) owns one. It holds the JSON parser and
// its buffers, so steady-state normalization never allocates. The custom pattern set is
// immutable and shared between threads.
//
// Lifetime of the event: string_views in `out` point into `msg`'s buffer, into this
// Normalizer's JSON buffers, into the pattern set, or at static strings; use the event before
// the next normalize() call on this object and before the input buffer is reused.
class Normalizer {
 public:
  explicit Normalizer(std::shared_ptr<const CustomPatternSet> patterns = nullptr);
  ~Normalizer();
  Normalizer(const Normalizer&) = delete;
  Normalizer& operator=(const Normalizer&) = delete;

  NormalizeResult normalize(const ingest::SyslogMessage& msg, AuthEvent& out) noexcept;

  // Swaps in a new pattern set (configuration reload); null means none.
  void set_patterns(std::shared_ptr<const CustomPatternSet> patterns) noexcept;

 private:
  NormalizeResult normalize_text(const ingest::SyslogMessage& msg, AuthEvent& out) noexcept;

  std::unique_ptr<JsonNormalizer> json_;
  std::shared_ptr<const CustomPatternSet> patterns_;
  ingest::SyslogMessage embedded_;  // the log line inside a JSON message
};

}  // namespace authwall::normalize
