#pragma once
// The normalize stage's output: one authentication-relevant event, the same for every daemon.
// The JSON form (`authwall check --jsonl`) is the contract in PRODUCT.md ("Event schema").
//
// string_views point into the SyslogMessage's buffer (or at static strings) and are valid only
// as long as that buffer is. Fields that need rewriting (mechanism upper-cased, a composed
// session id) live in small inline buffers, so an AuthEvent never allocates.
#include <array>
#include <cstdint>
#include <string_view>

#include "common/civil_time.h"
#include "common/ip_address.h"

namespace authwall::normalize {

enum class EventSource : std::uint8_t { postfix, dovecot, custom };
enum class EventKind : std::uint8_t {
  auth_failure,        // a login attempt failed
  auth_success,        // a login succeeded
  protocol_abuse,      // pipelining, PREGREET, too many errors, lost connection after AUTH, ...
  rejected,            // NOQUEUE: reject, milter-reject, postscreen DNSBL/denylist
  no_auth_disconnect,  // a connection that ended without any authentication attempt
};

std::string_view to_string(EventSource s) noexcept;  // "postfix", "dovecot", "custom"
std::string_view to_string(EventKind k) noexcept;    // "auth_failure", ...

// A fixed-capacity string for the few fields the normalizer must compose or rewrite.
template <std::size_t N>
struct InlineString {
  std::array<char, N> data{};
  std::uint8_t size = 0;
  void assign(std::string_view s) noexcept {
    size = static_cast<std::uint8_t>(s.size() < N ? s.size() : N);
    for (std::size_t i = 0; i < size; ++i) data[i] = s[i];
  }
  void append(std::string_view s) noexcept {
    for (char c : s) {
      if (size >= N) return;
      data[size++] = c;
    }
  }
  std::string_view view() const noexcept { return {data.data(), size}; }
  bool empty() const noexcept { return size == 0; }
  void clear() noexcept { size = 0; }
};

struct AuthEvent {
  bool has_time = false;
  UnixMicros time = 0;        // message timestamp, UTC
  std::string_view host;      // syslog HOSTNAME; empty = null
  std::string_view program;   // tag / APP-NAME as received
  EventSource source = EventSource::postfix;
  std::string_view service;   // "submission", "imap", ...; empty = null
  EventKind kind = EventKind::auth_failure;
  std::string_view reason;    // stable code ("sasl_failed", "password_mismatch", ...): static
  IpAddress ip;               // the client, from the daemon's own position only
  std::int32_t port = -1;     // -1 = null
  bool has_user = false;      // user may be present and empty ("user=<>")
  std::string_view user;      // exactly as logged
  InlineString<32> mechanism; // upper case; empty = null
  std::uint32_t attempts = 1;
  InlineString<96> session;   // empty = null
};

}  // namespace authwall::normalize
