#include "normalize/json_normalizer.h"

#include <simdjson.h>

#include <array>
#include <cstring>

#include "common/ip_address.h"
#include "ingest/syslog_parser.h"

namespace authwall::normalize {
namespace {

namespace od = simdjson::ondemand;

// A field that several JSON producers spell differently: the lowest rank seen wins, so the
// result does not depend on key order.
struct Slot {
  std::string_view value;
  int rank = 1000;
  bool present = false;
  void offer(std::string_view v, int r) noexcept {
    if (r < rank) {
      value = v;
      rank = r;
      present = true;
    }
  }
};

struct TimeSlot {
  UnixMicros value = 0;
  int rank = 1000;
  bool present = false;
  void offer(UnixMicros v, int r) noexcept {
    if (r < rank) {
      value = v;
      rank = r;
      present = true;
    }
  }
};

// Everything one pass over the object collects. Views point into the parser's string buffer.
struct Collected {
  // Wrapped log line (rsyslog templates, CEE, journald).
  Slot message;
  Slot program;
  Slot host;
  Slot procid;
  TimeSlot time;
  // Dovecot event exporter.
  std::string_view event;
  bool has_fields = false;
  TimeSlot event_time;
  Slot user;  // original_user beats user: it is what the client sent
  Slot remote_ip;
  Slot service;  // 2.4 `protocol` beats `service`
  std::string_view mechanism;
  std::string_view session;
  std::string_view error;
  std::string_view success;
  std::string_view reason;
  std::int64_t remote_port = -1;
  std::int64_t auth_attempts = -1;
  std::int64_t auth_successes = -1;
};

struct RankedKey {
  std::string_view key;
  int rank;
};

constexpr std::array<RankedKey, 3> kMessageKeys{{{"msg", 0}, {"message", 1}, {"MESSAGE", 2}}};
// syslogtag/tag carry "name[pid]:" and are cleaned up before use.
constexpr std::array<RankedKey, 10> kProgramKeys{{{"programname", 0},
                                                 {"app-name", 1},
                                                 {"appname", 2},
                                                 {"app_name", 3},
                                                 {"program", 4},
                                                 {"pname", 5},
                                                 {"SYSLOG_IDENTIFIER", 6},
                                                 {"ident", 7},
                                                 {"syslogtag", 8},
                                                 {"tag", 9}}};
constexpr std::array<RankedKey, 4> kHostKeys{
    {{"hostname", 0}, {"host", 1}, {"HOSTNAME", 2}, {"_HOSTNAME", 3}}};
constexpr std::array<RankedKey, 4> kProcidKeys{
    {{"procid", 0}, {"pid", 1}, {"SYSLOG_PID", 2}, {"_PID", 3}}};
constexpr std::array<RankedKey, 4> kTimeKeys{
    {{"timereported", 0}, {"timestamp", 1}, {"@timestamp", 2}, {"time", 3}}};

template <std::size_t N>
int rank_of(const std::array<RankedKey, N>& keys, std::string_view key) noexcept {
  for (const auto& k : keys) {
    if (k.key == key) return k.rank;
  }
  return -1;
}

bool read_string(od::value& v, std::string_view& out) noexcept {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS || t != od::json_type::string) return false;
  return v.get_string().get(out) == simdjson::SUCCESS;
}

// Integers as numbers or as decimal strings (exporters differ).
bool read_int(od::value& v, std::int64_t& out) noexcept {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return false;
  if (t == od::json_type::number) return v.get_int64().get(out) == simdjson::SUCCESS;
  std::string_view s;
  if (t != od::json_type::string || v.get_string().get(s) != simdjson::SUCCESS) return false;
  if (s.empty() || s.size() > 18) return false;
  std::int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  out = n;
  return true;
}

// RFC 3339 strings or Unix seconds (Dovecot's default `time_format = unix`, fractional).
bool read_time(od::value& v, UnixMicros& out) noexcept {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return false;
  if (t == od::json_type::string) {
    std::string_view s;
    return v.get_string().get(s) == simdjson::SUCCESS && parse_rfc3339(s, out);
  }
  if (t == od::json_type::number) {
    double d = 0;
    if (v.get_double().get(d) != simdjson::SUCCESS) return false;
    if (!(d >= 0 && d < 1e11)) return false;  // also rejects NaN
    out = static_cast<UnixMicros>(d * 1e6 + 0.5);
    return true;
  }
  return false;
}

bool collect_dovecot_fields(od::value& v, Collected& c) noexcept {
  od::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) return false;
  c.has_fields = true;
  for (auto result : obj) {
    od::field f;
    if (std::move(result).get(f) != simdjson::SUCCESS) return false;
    std::string_view key;
    if (f.unescaped_key().get(key) != simdjson::SUCCESS) return false;
    od::value& fv = f.value();
    std::string_view s;
    if (key == "user") {
      if (read_string(fv, s)) c.user.offer(s, 1);
    } else if (key == "original_user") {
      if (read_string(fv, s)) c.user.offer(s, 0);
    } else if (key == "remote_ip") {
      if (read_string(fv, s)) c.remote_ip.offer(s, 0);
    } else if (key == "remote_port") {
      read_int(fv, c.remote_port);
    } else if (key == "protocol") {
      if (read_string(fv, s)) c.service.offer(s, 0);
    } else if (key == "service") {
      if (read_string(fv, s)) c.service.offer(s, 1);
    } else if (key == "mechanism") {
      read_string(fv, c.mechanism);
    } else if (key == "session") {
      read_string(fv, c.session);
    } else if (key == "error") {
      read_string(fv, c.error);
    } else if (key == "success") {
      read_string(fv, c.success);
    } else if (key == "reason") {
      read_string(fv, c.reason);
    } else if (key == "auth_attempts") {
      read_int(fv, c.auth_attempts);
    } else if (key == "auth_successes") {
      read_int(fv, c.auth_successes);
    }
    // Anything else (real_remote_ip is the proxy, not the client; tls_*, local_*) is skipped.
  }
  return true;
}

bool collect(od::object& obj, Collected& c) noexcept {
  for (auto result : obj) {
    od::field f;
    if (std::move(result).get(f) != simdjson::SUCCESS) return false;
    std::string_view key;
    if (f.unescaped_key().get(key) != simdjson::SUCCESS) return false;
    od::value& v = f.value();
    std::string_view s;
    int r = 0;
    if (key == "event") {
      read_string(v, c.event);
    } else if (key == "fields") {
      if (!collect_dovecot_fields(v, c)) return false;
    } else if (key == "end_time" || key == "start_time") {
      UnixMicros t = 0;
      if (read_time(v, t)) c.event_time.offer(t, key == "end_time" ? 0 : 1);
    } else if ((r = rank_of(kMessageKeys, key)) >= 0) {
      if (read_string(v, s)) c.message.offer(s, r);
    } else if ((r = rank_of(kProgramKeys, key)) >= 0) {
      if (read_string(v, s)) c.program.offer(s, r);
    } else if ((r = rank_of(kHostKeys, key)) >= 0) {
      if (read_string(v, s)) c.host.offer(s, r);
    } else if ((r = rank_of(kProcidKeys, key)) >= 0) {
      if (read_string(v, s)) {
        c.procid.offer(s, r);
      } else {
        // journald and some templates give the pid as a number; keep its raw digits.
        std::string_view raw = v.raw_json_token();
        while (!raw.empty() && (raw.back() == ' ' || raw.back() == ',')) raw.remove_suffix(1);
        if (!raw.empty() && raw.front() >= '0' && raw.front() <= '9') c.procid.offer(raw, r);
      }
    } else if ((r = rank_of(kTimeKeys, key)) >= 0) {
      UnixMicros t = 0;
      if (read_time(v, t)) c.time.offer(t, r);
    }
  }
  return true;
}

bool contains_ci(std::string_view hay, std::string_view needle) noexcept {
  if (needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    std::size_t k = 0;
    while (k < needle.size()) {
      char a = hay[i + k];
      if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
      if (a != needle[k]) break;
      ++k;
    }
    if (k == needle.size()) return true;
  }
  return false;
}

// Errors that mean Dovecot itself is in trouble, not the client: outages are not attacks.
bool is_outage_error(std::string_view error) noexcept {
  return contains_ci(error, "internal") || contains_ci(error, "temporar") ||
         contains_ci(error, "communication") || contains_ci(error, "timed out") ||
         contains_ci(error, "timeout");
}

struct AbortReason {
  std::string_view code;  // Dovecot's login_aborted `reason`, also our event reason
  bool event;             // false: an outage or the server's own state, no event
  EventKind kind;
};

// Dovecot 2.4 login_aborted reasons (doc.dovecot.org "Events": login_aborted).
constexpr std::array<AbortReason, 27> kAbortReasons{{
    {"auth_failed", true, EventKind::auth_failure},
    {"cleartext_auth_disabled", true, EventKind::auth_failure},
    {"invalid_mech", true, EventKind::auth_failure},
    {"anonymous_auth_disabled", true, EventKind::auth_failure},
    {"authorization_failed", true, EventKind::auth_failure},
    {"proxy_dest_auth_failed", true, EventKind::auth_failure},
    {"auth_aborted_by_client", true, EventKind::protocol_abuse},
    {"auth_waiting_client", true, EventKind::protocol_abuse},
    {"invalid_base64", true, EventKind::auth_failure},  // the last attempt's code; see below
    {"no_auth_attempts", true, EventKind::no_auth_disconnect},
    // The user's own account state: the password was right, or the account is locked.
    {"login_disabled", false, EventKind::auth_failure},
    {"user_disabled", false, EventKind::auth_failure},
    {"password_expired", false, EventKind::auth_failure},
    {"auth_nologin_referral", false, EventKind::auth_failure},
    {"client_ssl_cert_untrusted", false, EventKind::auth_failure},
    {"client_ssl_cert_missing", false, EventKind::auth_failure},
    {"client_ssl_not_started", false, EventKind::auth_failure},
    // Outages and server state.
    {"auth_process_comm_fail", false, EventKind::auth_failure},
    {"auth_process_not_ready", false, EventKind::auth_failure},
    {"internal_failure", false, EventKind::auth_failure},
    {"process_full", false, EventKind::auth_failure},
    {"shutting_down", false, EventKind::auth_failure},
    {"proxy_dest_connect_failed", false, EventKind::auth_failure},
    {"proxy_dest_internal_failure", false, EventKind::auth_failure},
    {"proxy_dest_remote_failure", false, EventKind::auth_failure},
    {"proxy_dest_protocol_failure", false, EventKind::auth_failure},
    {"proxy_dest_auth_temp_failed", false, EventKind::auth_failure},
}};

constexpr std::string_view kProxyDestRedirected = "proxy_dest_redirected";

std::string_view trim_left(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// "postfix/smtpd[123]:" -> name "postfix/smtpd", pid "123".
void split_tag(std::string_view tag, std::string_view& name, std::string_view& pid) noexcept {
  while (!tag.empty() && (tag.back() == ':' || tag.back() == ' ')) tag.remove_suffix(1);
  name = tag;
  pid = {};
  if (!tag.empty() && tag.back() == ']') {
    const auto open = tag.rfind('[');
    if (open != std::string_view::npos) {
      name = tag.substr(0, open);
      pid = tag.substr(open + 1, tag.size() - open - 2);
    }
  }
}

JsonOutcome map_dovecot_event(const Collected& c, const ingest::SyslogMessage& outer,
                              AuthEvent& out) noexcept {
  EventKind kind = EventKind::auth_failure;
  std::string_view reason;
  std::uint32_t attempts = 1;
  std::string_view service = c.service.value;
  if (service.size() > 6 && service.substr(service.size() - 6) == "-login") {
    service.remove_suffix(6);  // the login process name, e.g. "imap-login"
  }
  if (c.event == "auth_request_finished" || c.event == "auth_client_request_finished") {
    if (!c.error.empty()) {
      if (is_outage_error(c.error)) return JsonOutcome::ignored;
      kind = EventKind::auth_failure;
      reason = "auth_failed";
    } else if (c.event == "auth_client_request_finished" || c.success == "yes") {
      // Delivery and admin lookups are not logins.
      if (service == "lmtp" || service == "doveadm" || service == "lda") return JsonOutcome::ignored;
      kind = EventKind::auth_success;
      reason = "login";
    } else {
      return JsonOutcome::ignored;
    }
  } else if (c.event == "login_aborted") {
    const AbortReason* found = nullptr;
    for (const auto& r : kAbortReasons) {
      if (r.code == c.reason) {
        found = &r;
        break;
      }
    }
    if (found == nullptr) {
      // A redirect is normal proxy operation; any other code is new to us and must be seen.
      return c.reason == kProxyDestRedirected ? JsonOutcome::ignored : JsonOutcome::unrecognized;
    }
    if (!found->event) return JsonOutcome::ignored;
    kind = found->kind;
    reason = found->code;
    // Every failure reason, not only auth_failed: Dovecot names the code of the session's last
    // attempt, and the failed passwords before it are in auth_attempts all the same.
    if (kind == EventKind::auth_failure && c.auth_attempts > 0) {
      const std::int64_t failed =
          c.auth_attempts - (c.auth_successes > 0 ? c.auth_successes : 0);
      attempts = static_cast<std::uint32_t>(failed > 1 ? (failed > 1000000 ? 1000000 : failed) : 1);
    }
  } else {
    return JsonOutcome::ignored;
  }

  out = AuthEvent{};
  if (!c.remote_ip.present || !IpAddress::parse(c.remote_ip.value, out.ip)) {
    return kind == EventKind::auth_success ? JsonOutcome::ignored : JsonOutcome::unrecognized;
  }
  if (c.event_time.present) {
    out.has_time = true;
    out.time = c.event_time.value;
  } else {
    out.has_time = outer.has_time;
    out.time = outer.time;
  }
  out.host = c.host.present ? c.host.value : outer.hostname;
  out.program = outer.app_name.empty() ? std::string_view("dovecot") : outer.app_name;
  out.source = EventSource::dovecot;
  out.service = service;
  out.kind = kind;
  out.reason = reason;
  if (c.remote_port > 0 && c.remote_port <= 65535) out.port = static_cast<std::int32_t>(c.remote_port);
  if (c.user.present) {
    out.has_user = true;
    out.user = c.user.value;
  }
  for (char ch : c.mechanism) {
    const char up = (ch >= 'a' && ch <= 'z') ? static_cast<char>(ch - 'a' + 'A') : ch;
    out.mechanism.append(std::string_view(&up, 1));
  }
  out.session.assign(c.session);
  out.attempts = attempts;
  return JsonOutcome::event;
}

int two_digits(std::string_view s, std::size_t at) noexcept {
  if (at + 2 > s.size()) return -1;
  const char a = s[at];
  const char b = s[at + 1];
  if (a < '0' || a > '9' || b < '0' || b > '9') return -1;
  return (a - '0') * 10 + (b - '0');
}

}  // namespace

bool parse_rfc3339(std::string_view s, UnixMicros& out) noexcept {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  if (s.size() < 20) return false;
  const int y1 = two_digits(s, 0);
  const int y2 = two_digits(s, 2);
  if (y1 < 0 || y2 < 0 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':') {
    return false;
  }
  const int year = y1 * 100 + y2;
  const int month = two_digits(s, 5);
  const int day = two_digits(s, 8);
  const int hour = two_digits(s, 11);
  const int minute = two_digits(s, 14);
  const int second = two_digits(s, 17);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 ||
      minute > 59 || second < 0 || second > 60) {
    return false;
  }
  std::size_t i = 19;
  std::int64_t micros = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    std::size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (digits < 6) micros = micros * 10 + (s[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0) return false;
    for (std::size_t d = digits; d < 6; ++d) micros *= 10;
  }
  std::int64_t offset_seconds = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int oh = two_digits(s, i + 1);
    const int om = i + 3 < s.size() && s[i + 3] == ':' ? two_digits(s, i + 4) : -1;
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return false;
    offset_seconds = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return false;
  }
  if (i != s.size()) return false;
  const std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const std::int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  out = secs * kMicrosPerSecond + micros;
  return true;
}

namespace {

// The wrapped line is rebuilt here as "<host> <tag>[<pid>]: <msg>", laid out as
// parse_syslog would leave it in a receive buffer. The Dovecot normalizer rejoins HOSTNAME or
// TAG with MSG of log_path lines ("imap-login: ...", "auth(first second,...") by the
// distance between the views, which only means something when they lie in one buffer in
// syslog order; JSON gives them in any key order, in simdjson's string buffer or in the outer
// message. Hosts and tags longer than syslog allows are cut.
constexpr std::size_t kMaxHost = 255;
constexpr std::size_t kMaxTag = 255;
constexpr std::size_t kMaxPid = 128;
constexpr std::size_t kLineCapacity =
    kMaxHost + 1 + kMaxTag + kMaxPid + 4 + ingest::kMaxSyslogMessageLength;

std::size_t put(char* out, std::size_t at, std::string_view s, std::size_t max) noexcept {
  const std::size_t n = s.size() < max ? s.size() : max;
  if (n != 0) std::memcpy(out + at, s.data(), n);
  return at + n;
}

// Copies the wrapped line's host, tag, pid and message into `buf` (kLineCapacity bytes)
// in syslog order and points `embedded` at the copies.
void rebuild_line(ingest::SyslogMessage& embedded, char* buf) noexcept {
  std::size_t at = put(buf, 0, embedded.hostname, kMaxHost);
  const std::string_view host(buf, at);
  if (at != 0) buf[at++] = ' ';
  const std::size_t app_at = at;
  at = put(buf, at, embedded.app_name, kMaxTag);
  const std::string_view app(buf + app_at, at - app_at);
  std::string_view pid;
  if (!embedded.procid.empty()) {
    buf[at++] = '[';
    const std::size_t pid_at = at;
    at = put(buf, at, embedded.procid, kMaxPid);
    pid = std::string_view(buf + pid_at, at - pid_at);
    buf[at++] = ']';
  }
  buf[at++] = ':';
  buf[at++] = ' ';
  const std::size_t msg_at = at;
  at = put(buf, at, embedded.message, kLineCapacity - at);
  embedded.hostname = host;
  embedded.app_name = app;
  embedded.procid = pid;
  embedded.message = std::string_view(buf + msg_at, at - msg_at);
}

}  // namespace

// Who may speak for another program. A JSON message that wraps a log line claims the program
// that wrote it; only log relays (and JSON arriving with no syslog program of its own, e.g. a
// bare JSON datagram or a JSON file line) may make that claim for a different program.
// Otherwise any local program that logs attacker text at the start of its message could forge
// a Postfix or Dovecot line and choose the address that gets banned.
constexpr std::string_view kLogRelays[] = {"rsyslogd", "rsyslog",  "journal", "systemd-journald",
                                           "syslog-ng", "fluent-bit", "vector"};

bool may_speak_for(std::string_view outer_program, std::string_view claimed) noexcept {
  if (outer_program.empty() || outer_program == claimed) return true;
  for (std::string_view relay : kLogRelays) {
    if (outer_program == relay) return true;
  }
  // "postfix" (RFC 5424 APP-NAME without the service) speaking for "postfix/smtpd".
  return claimed.size() > outer_program.size() && claimed.starts_with(outer_program) &&
         claimed[outer_program.size()] == '/';
}

// Dovecot's event exporter writes through Dovecot's own logging (ident dovecot, or the stats
// process in Dovecot's log file), or arrives through a relay.
bool may_export_dovecot_events(std::string_view outer_program) noexcept {
  return outer_program.empty() || outer_program.starts_with("dovecot") ||
         outer_program == "stats" || may_speak_for(outer_program, "dovecot");
}

struct JsonNormalizer::Impl {
  static constexpr std::size_t kCapacity = ingest::kMaxSyslogMessageLength;
  std::unique_ptr<char[]> padded{new char[kCapacity + simdjson::SIMDJSON_PADDING]};
  std::unique_ptr<char[]> line{new char[kLineCapacity]};
  od::parser parser{kCapacity};

  Impl() {
    // Size every internal buffer once, here, so no parse ever allocates. A failure leaves the
    // parser to allocate lazily on first use, which is still correct.
    if (parser.allocate(kCapacity) != simdjson::SUCCESS) return;
  }
};

JsonNormalizer::JsonNormalizer() : impl_(std::make_unique<Impl>()) {}
JsonNormalizer::~JsonNormalizer() = default;

bool JsonNormalizer::extract(std::string_view message, std::string_view& json) noexcept {
  if (message.empty()) return false;
  if (message.front() == '{') {
    json = message;
    return true;
  }
  if (message.front() == '@' && message.substr(0, 5) == "@cee:") {
    json = trim_left(message.substr(5));
    return !json.empty() && json.front() == '{';
  }
  // Dovecot's `event_exporter` with the log driver writes from the stats process: syslog gives
  // "stats: {...}" (ident dovecot), its log_path file "stats: Info: {...}" (where the syslog
  // parser takes "stats:" for the tag, leaving "Info: {...}").
  std::string_view rest = message;
  if (rest.front() == 's' && rest.substr(0, 7) == "stats: ") rest.remove_prefix(7);
  if (!rest.empty() && rest.front() == 'I' && rest.substr(0, 6) == "Info: ") rest.remove_prefix(6);
  if (rest.size() < message.size() && !rest.empty() && rest.front() == '{') {
    json = rest;
    return true;
  }
  return false;
}

JsonOutcome JsonNormalizer::normalize(const ingest::SyslogMessage& outer, std::string_view json,
                                      AuthEvent& out, ingest::SyslogMessage& embedded) noexcept {
  while (!json.empty() && (json.back() == ' ' || json.back() == '\r' || json.back() == '\n' ||
                           json.back() == '\t' || json.back() == '\0')) {
    json.remove_suffix(1);
  }
  if (json.empty() || json.size() > Impl::kCapacity) return JsonOutcome::ignored;
  std::memcpy(impl_->padded.get(), json.data(), json.size());
  std::memset(impl_->padded.get() + json.size(), 0, simdjson::SIMDJSON_PADDING);

  od::document doc;
  if (impl_->parser
          .iterate(impl_->padded.get(), json.size(), json.size() + simdjson::SIMDJSON_PADDING)
          .get(doc) != simdjson::SUCCESS) {
    return JsonOutcome::ignored;
  }
  od::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return JsonOutcome::ignored;
  Collected c;
  if (!collect(obj, c)) return JsonOutcome::ignored;

  if (!c.event.empty() && c.has_fields) {
    if (!may_export_dovecot_events(outer.app_name)) return JsonOutcome::ignored;
    return map_dovecot_event(c, outer, out);
  }

  if (!c.message.present) return JsonOutcome::ignored;
  embedded = outer;
  embedded.msgid = {};
  embedded.structured_data = {};
  embedded.message = trim_left(c.message.value);
  if (c.program.present) {
    std::string_view name;
    std::string_view pid;
    if (c.program.rank >= 8) {
      split_tag(c.program.value, name, pid);
    } else {
      name = c.program.value;
    }
    if (!may_speak_for(outer.app_name, name)) return JsonOutcome::ignored;
    embedded.app_name = name;
    embedded.procid = pid;
  }
  if (c.procid.present) embedded.procid = c.procid.value;
  if (c.host.present) embedded.hostname = c.host.value;
  rebuild_line(embedded, impl_->line.get());
  if (c.time.present) {
    embedded.has_time = true;
    embedded.time = c.time.value;
  }
  return JsonOutcome::embedded;
}

}  // namespace authwall::normalize
