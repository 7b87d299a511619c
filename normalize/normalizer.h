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

}  // namespace authwall::normalize
