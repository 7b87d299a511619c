// Dovecot 2.2, 2.3 and 2.4 -> AuthEvent.
//
// The formats below were read from Dovecot's own sources, version by version:
//   - login processes (src/login-common/client-common.c, client-common-auth.c, sasl-server.c):
//       <msg>: <elements>
//     where <elements> is login_log_format_elements joined with ", " (default
//     "user=<%u> method=%m rip=%r lip=%l mpid=%e %c session=<%{session}>", empty ones dropped,
//     user=<> always kept). <msg> is
//       2.2:       "Disconnected (auth failed, 3 attempts in 12 secs)", "Aborted login (...)",
//                  "Disconnected: Inactivity (...)", "Login", "proxy(u): Login failed to h:p: ..."
//       2.3:       "Disconnected: Connection closed (auth failed, 3 attempts in 15 secs)",
//                  "Client has quit the connection (...)", "Remote closed connection (...)"
//       2.3.x/2.4: "Login aborted: Connection closed (auth failed, 3 attempts in 15 secs)
//                  (auth_failed)", "Logged in"
//     The parenthesised "extra reason" (client_get_extra_disconnect_reason) is what we classify.
//   - the auth process (src/auth/auth-request.c get_log_prefix):
//       2.2/2.3:   auth: <db>(<user>[,<ip>][,master][,<session>]): <message>
//                  auth-worker(<pid>): [conn unix:auth-worker (...): auth-worker<N>: ]<db>(...)...
//       2.4:       auth(<user>[,<ip>][,sasl:<mech>][,master])[<session>]: <db>: <message>
//                  auth-worker(<user>,<ip>)<pid>[<session>]: request [N]: <db>: <message>
//     <user> is str_sanitize()d (control characters replaced, length capped) and nothing else:
//     commas, parentheses, '<', '>' and ': ' all pass through.
//   - PAM's own pam_unix line, logged through Dovecot's auth process.
//
// Safety rules (PRODUCT.md "Safety"), each enforced below where it applies:
//   1. Login lines: Dovecot writes user=<...> (attacker text, only str_sanitize()d: '>' and ", "
//      are NOT escaped in any version) and method= (the client's mechanism name, upper-cased but
//      otherwise attacker text) BEFORE rip=. So the client address is the LAST ", rip=" field, and
//      everything after it must be Dovecot's own fields (lip=, mpid=, lport=, rport=, secured /
//      TLS..., session=<base64> last). A tail that contains anything else means the layout is
//      not the one we know, so no address is taken from the line at all.
//   2. Auth-process prefixes: the user may contain ",1.2.3.4" and even "): " or ")<x>: ", and
//      with auth_verbose_passwords=plain the message may end in attacker text too. We find every
//      position that structurally ends a prefix (",<ip>[,sasl:m][,master][,<session>])" followed
//      by Dovecot's own "<pid>", "<session>", ": request [N]" and ": "), reading the address from
//      the right of that position. Exactly one such position must exist; two or more means
//      someone wrote a prefix into a user name or password, and the line yields no event.
//      With a single position the address is the field right before it, so a user "a,1.2.3.4"
//      can never supply the address. Known limit: a request that carries no address at all
//      (Dovecot then writes no ip field) cannot be told apart from a user name ending in
//      ",<ip>"; every Dovecot login process and Postfix send the address, and the default
//      auth_username_chars rejects ',' before any passdb is asked.
//   3. pam_unix: "ruser=<user> rhost=<ip>[  user=<user>]" has attacker text on both sides of
//      the address, so the same uniqueness rule applies to " rhost=".
//
// Linear time: every search below is a forward find over the line or a backward scan bounded
// by a small constant from a position a forward find produced (the forward-only parts use
// LineCursor; the prefix rules need those bounded backward scans, which it does not offer).
// No allocation: all results are views into the message or static strings.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "normalize/line_cursor.h"
#include "normalize/normalizer.h"

namespace authwall::normalize {

namespace {

using std::string_view;
constexpr auto npos = string_view::npos;

constexpr bool starts_with(string_view s, string_view p) noexcept {
  return s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
}
constexpr bool ends_with(string_view s, string_view p) noexcept {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
constexpr bool contains(string_view s, string_view p) noexcept { return s.find(p) != npos; }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_lower_alnum(char c) noexcept { return (c >= 'a' && c <= 'z') || is_digit(c); }
constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
// Dovecot session ids are base64 (client_get_session_id); pids are digits, a subset.
constexpr bool is_base64(char c) noexcept {
  return is_alpha(c) || is_digit(c) || c == '+' || c == '/' || c == '=';
}
// Session ids as other services pass them to auth: LMTP numbers each recipient after the first
// "<transaction id>:R2" (lmtp-recipient.c). Such a session must still parse, or a user name
// holding a fake prefix would be the only prefix that does (and win the uniqueness rule).
constexpr bool is_session_char(char c) noexcept { return is_base64(c) || c == ':'; }
constexpr bool is_hex(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
constexpr bool is_ip_char(char c) noexcept { return is_hex(c) || c == ':' || c == '.'; }
// SASL mechanism names (RFC 4422: upper-case letters, digits, '-' and '_').
constexpr bool is_mech_char(char c) noexcept {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '_';
}
constexpr char to_upper(char c) noexcept { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }

constexpr std::size_t kMaxSessionLength = 64;  // Dovecot's are 16-24 base64 characters
constexpr std::size_t kMaxIpLength = 45;       // INET6_ADDRSTRLEN - 1
constexpr std::size_t kMaxProcessName = 64;

bool all_digits(string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_digit(c)) return false;
  return true;
}

// ---- the result being built --------------------------------------------------------------

// What one parse produced, before it is copied into the AuthEvent. Keeping it separate lets
// every template bail out without leaving a half-filled event behind.
struct Found {
  NormalizeOutcome outcome = NormalizeOutcome::ignored;
  EventKind kind = EventKind::auth_failure;
  string_view reason;
  string_view service;
  IpAddress ip;
  std::int32_t port = -1;
  bool has_user = false;
  string_view user;
  string_view mechanism;  // copied upper-cased
  std::uint32_t attempts = 1;
  string_view session;
};

Found ignored() noexcept { return Found{}; }
Found unrecognized() noexcept {
  Found f;
  f.outcome = NormalizeOutcome::unrecognized;
  return f;
}

// ---- failure / outage vocabulary ---------------------------------------------------------

// Outages are not attacks (PRODUCT.md "Event schema"): an unavailable auth server or database
// makes every client fail at once, and banning them all would lock everyone out.
bool looks_like_outage(string_view text) noexcept {
  static constexpr string_view kOutage[] = {
      "Connection lost to authentication server",
      "auth process communication failure",
      "temporary failure",
      "Password query failed",
      "User query failed",
      "Internal login failure",
      "Auth process not responding",
      "Authentication server not available",
  };
  for (string_view k : kOutage)
    if (contains(text, k)) return true;
  return false;
}

// A Dovecot line that says a login failed but matched no template: reported as unrecognized
// so a format change never fails silently.
bool looks_like_failure(string_view text) noexcept {
  static constexpr string_view kFailure[] = {
      "auth failed",  "Password mismatch",    "password mismatch",      "authentication failure",
      "Authentication failure", "unknown user", "Login failed",         "invalid credentials",
      "pam_authenticate", "Authentication failed", "AUTHENTICATIONFAILED",
  };
  for (string_view k : kFailure)
    if (contains(text, k)) return true;
  return false;
}

// Lines matched by no template: outages and ordinary lines are ignored, failure-like ones
// are unrecognized.
Found unmatched(string_view text) noexcept {
  if (looks_like_outage(text)) return ignored();
  return looks_like_failure(text) ? unrecognized() : ignored();
}

enum class Level : std::uint8_t { none, debug, info, warning, error, fatal };

// Dovecot's log_path files (and 2.4 event prefixes) carry the level as text after the prefix.
Level strip_level(string_view& s) noexcept {
  struct Entry {
    string_view text;
    Level level;
  };
  static constexpr Entry kLevels[] = {
      {"Info: ", Level::info},   {"Warning: ", Level::warning}, {"Error: ", Level::error},
      {"Debug: ", Level::debug}, {"Fatal: ", Level::fatal},     {"Panic: ", Level::fatal},
  };
  for (const Entry& e : kLevels) {
    if (starts_with(s, e.text)) {
      s.remove_prefix(e.text.size());
      return e.level;
    }
  }
  return Level::none;
}

// ", 3 attempts" anywhere in a login extra reason -> 3; 1 when absent (2.2's plaintext and
// mechanism refusals do not say how many attempts there were: one, at least).
std::uint32_t attempts_in(string_view human) noexcept {
  for (std::size_t pos = human.find(", "); pos != npos; pos = human.find(", ", pos + 1)) {
    std::size_t i = pos + 2;
    std::uint32_t n = 0;
    std::size_t digits = 0;
    while (i < human.size() && is_digit(human[i]) && digits < 9) {
      n = n * 10 + static_cast<std::uint32_t>(human[i] - '0');
      ++i;
      ++digits;
    }
    if (digits > 0 && human.substr(i, 9) == " attempts") return n > 0 ? n : 1;
  }
  return 1;
}

// ---- login processes ---------------------------------------------------------------------

// Parses the fields after the last rip= (rule 1 in the file comment). `tail` starts right
// after the address. Sets session/port; false when a field is not one Dovecot writes there.
bool parse_login_tail(string_view tail, Found& f) noexcept {
  LineCursor c(tail);
  bool seen_lip = false, seen_mpid = false, seen_lport = false, seen_rport = false,
       seen_secured = false;
  // "<key>=<digits>" up to the next element.
  const auto number = [&c](int& value) noexcept {
    return c.take_uint(value) && (c.at_end() || c.starts_with(","));
  };
  while (!c.at_end()) {
    if (!c.consume(", ")) return false;
    int value = 0;
    if (!seen_lip && c.consume("lip=")) {
      seen_lip = true;
      IpAddress local;
      if (!IpAddress::parse(c.take_until_or_end(','), local)) return false;
    } else if (!seen_mpid && c.consume("mpid=")) {
      seen_mpid = true;
      if (!number(value)) return false;
    } else if (!seen_lport && c.consume("lport=")) {
      seen_lport = true;
      if (!number(value)) return false;
    } else if (!seen_rport && c.consume("rport=")) {  // %b, when the operator logs it
      seen_rport = true;
      if (!number(value) || value > 65535) return false;
      f.port = value;
    } else if (c.consume("session=<")) {
      // Always the last element: a session followed by anything is not Dovecot's layout.
      const string_view rest = c.rest();
      if (rest.size() < 2 || rest.back() != '>' || rest.size() - 1 > kMaxSessionLength) {
        return false;
      }
      const string_view id = rest.substr(0, rest.size() - 1);
      for (char ch : id)
        if (!is_session_char(ch)) return false;
      f.session = id;
      return true;
    } else if (!seen_secured && c.starts_with("secured") &&
               (c.rest().size() == 7 || c.rest()[7] == ',')) {
      seen_secured = true;
      c.skip(7);
    } else if (!seen_secured && (c.starts_with("TLS") || c.starts_with("TSL"))) {
      // %c: "TLS", "TLS handshaking", "TLS: <ssl error>", possibly followed by %k
      // ("TLSv1.3 with cipher ... (256/256 bits)"): free text from OpenSSL, up to the session.
      // It never holds the client's text; to be sure, nothing that looks like another element
      // is allowed in it. ("TSL" is 2.4's own spelling for a TLS connection without iostream.)
      seen_secured = true;
      const string_view text = c.rest().substr(0, c.rest().rfind(", session=<"));
      if (text.find_first_of("<>") != npos || contains(text, "rip=") || contains(text, "user=") ||
          contains(text, "method=")) {
        return false;
      }
      c.skip(text.size());
    } else {
      return false;
    }
  }
  return true;
}

// `elements` is the text after "<msg>: ". Fills ip, user, mechanism, session, port.
bool parse_login_elements(string_view elements, Found& f) noexcept {
  // The real rip= is the last one that starts an element (rule 1).
  std::size_t rip = npos;
  for (std::size_t pos = elements.rfind("rip="); pos != npos;
       pos = pos == 0 ? npos : elements.rfind("rip=", pos - 1)) {
    if (pos == 0 || (pos >= 2 && elements.compare(pos - 2, 2, ", ") == 0)) {
      rip = pos;
      break;
    }
  }
  if (rip == npos) return false;
  string_view after = elements.substr(rip + 4);
  const std::size_t ip_end = after.find(',');
  if (!parse_client_address(after.substr(0, ip_end), f.ip)) return false;
  after.remove_prefix(ip_end == npos ? after.size() : ip_end);
  if (!parse_login_tail(after, f)) return false;

  // Left of rip=: "user=<U>, method=M", "user=<U>", "method=M" or nothing. U is attacker text
  // that may itself contain ">, method=", so the method is the LAST ", method=" element and
  // the user is everything between "user=<" and the '>' right before it.
  string_view left = elements.substr(0, rip >= 2 ? rip - 2 : 0);
  if (left.empty()) return true;
  string_view method;
  if (starts_with(left, "user=<")) {
    const std::size_t m = left.rfind(", method=");
    if (m != npos && m >= 7 && left[m - 1] == '>') {
      f.user = left.substr(6, m - 1 - 6);
      method = left.substr(m + 9);
    } else if (left.back() == '>') {
      f.user = left.substr(6, left.size() - 7);
    } else {
      return false;
    }
    f.has_user = true;
  } else if (starts_with(left, "method=")) {
    method = left.substr(7);
  } else {
    return false;
  }
  bool mech_ok = !method.empty() && method.size() <= 32;
  for (char c : method) mech_ok = mech_ok && is_mech_char(c);
  if (mech_ok) f.mechanism = method;
  return true;
}

struct ReasonRule {
  string_view prefix;  // of the human-readable extra reason
  NormalizeOutcome outcome;
  EventKind kind;
  string_view reason;
};

// The extra reasons of client_get_extra_disconnect_reason(), every version. Order matters
// only where one prefix extends another.
constexpr ReasonRule kLoginReasons[] = {
    {"auth failed", NormalizeOutcome::event, EventKind::auth_failure, "auth_failed"},
    {"tried to use disallowed plaintext auth", NormalizeOutcome::event, EventKind::auth_failure,
     "plaintext_disabled"},
    {"tried to use disabled plaintext auth", NormalizeOutcome::event, EventKind::auth_failure,
     "plaintext_disabled"},
    {"tried to use disallowed cleartext auth", NormalizeOutcome::event, EventKind::auth_failure,
     "plaintext_disabled"},
    {"tried to use unsupported auth mechanism", NormalizeOutcome::event, EventKind::auth_failure,
     "unsupported_mechanism"},
    {"proxy dest auth failed", NormalizeOutcome::event, EventKind::auth_failure,
     "proxy_dest_auth_failed"},  // 2.2/2.3
    {"proxy dest authentication failure", NormalizeOutcome::event, EventKind::auth_failure,
     "proxy_dest_auth_failed"},  // 2.4 ("proxy dest " + the failure type's text)
    {"user disabled", NormalizeOutcome::event, EventKind::auth_failure, "user_disabled"},
    {"password expired", NormalizeOutcome::event, EventKind::auth_failure, "password_expired"},
    {"authorization failed", NormalizeOutcome::event, EventKind::auth_failure,
     "authorization_failed"},
    {"login disabled", NormalizeOutcome::event, EventKind::auth_failure, "login_disabled"},
    {"anonymous logins disabled", NormalizeOutcome::event, EventKind::auth_failure,
     "anonymous_disabled"},
    {"no auth attempts", NormalizeOutcome::event, EventKind::no_auth_disconnect,
     "no_auth_attempts"},
    {"disconnected during TLS handshake", NormalizeOutcome::event, EventKind::no_auth_disconnect,
     "tls_handshake_not_finished"},
    {"client didn't finish SASL auth", NormalizeOutcome::event, EventKind::protocol_abuse,
     "sasl_not_finished"},
    {"aborted authentication", NormalizeOutcome::event, EventKind::protocol_abuse,
     "auth_aborted"},
    {"auth aborted by client", NormalizeOutcome::event, EventKind::protocol_abuse,
     "auth_aborted"},
    {"disconnected while authenticating", NormalizeOutcome::event, EventKind::protocol_abuse,
     "disconnected_while_authenticating"},
    // Dovecot shows this instead of "auth failed, N attempts" when the last of the session's
    // attempts had it, so earlier failed passwords hide behind it: a failure, at least one.
    {"sent invalid base64 in response", NormalizeOutcome::event, EventKind::auth_failure,
     "invalid_base64"},
    // No event: outages, our own limits, successful logins that failed later, certificates.
    {"disconnected before auth was ready", NormalizeOutcome::ignored, {}, {}},
    {"auth process communication failure", NormalizeOutcome::ignored, {}, {}},
    {"auth service reported temporary failure", NormalizeOutcome::ignored, {}, {}},
    {"internal failure", NormalizeOutcome::ignored, {}, {}},
    {"disconnected while finishing login", NormalizeOutcome::ignored, {}, {}},
    {"auth referral", NormalizeOutcome::ignored, {}, {}},
    {"proxy dest ", NormalizeOutcome::ignored, {}, {}},  // connection/remote/temporary failure
    {"connection limit reached", NormalizeOutcome::ignored, {}, {}},
    {"client_limit and process_limit", NormalizeOutcome::ignored, {}, {}},
    {"The process is shutting down", NormalizeOutcome::ignored, {}, {}},
    {"cert required", NormalizeOutcome::ignored, {}, {}},
    {"client sent an invalid cert", NormalizeOutcome::ignored, {}, {}},
    {"client sent an untrusted cert", NormalizeOutcome::ignored, {}, {}},
    {"client didn't send a cert", NormalizeOutcome::ignored, {}, {}},
};

// The human reason of a login <msg>: its last parenthesised group, skipping 2.3.x/2.4's
// trailing event code "(auth_failed)". Human reasons contain no parentheses themselves.
bool extra_reason(string_view msg, string_view& human) noexcept {
  for (int round = 0; round < 2; ++round) {
    if (msg.empty() || msg.back() != ')') return false;
    const std::size_t open = msg.rfind('(');
    if (open == npos || open == 0 || msg[open - 1] != ' ') return false;
    const string_view group = msg.substr(open + 1, msg.size() - open - 2);
    bool code = !group.empty();
    for (char c : group) code = code && (is_lower_alnum(c) || c == '_');
    if (!code || round == 1) {
      human = group;
      return true;
    }
    msg = msg.substr(0, open - 1);
  }
  return false;
}

Found parse_login_proxy(string_view body) noexcept {
  // "proxy(<user>): Login failed to <host>:<port>[/<destuser>][ (master <m>)]: <backend reply>:
  // <elements>" and "proxy(<user>): started proxying to ...: <elements>". The user (twice) and
  // the backend reply precede the elements, so the last-rip rule covers them; the first
  // ": user=<" cannot be told apart from one inside the user, so the last one is taken for the
  // user field (which never decides an address).
  Found f;
  const std::size_t user_at = body.rfind(": user=<");
  if (user_at == npos) return unmatched(body);
  const string_view msg = body.substr(0, user_at);
  if (!parse_login_elements(body.substr(user_at + 2), f)) return unmatched(body);
  if (contains(msg, "Login failed to ")) {
    if (!(contains(msg, "uthentication failed") || contains(msg, "AUTHENTICATIONFAILED") ||
          contains(msg, "auth failed"))) {
      return ignored();  // the backend refused for its own reasons (unavailable, ...)
    }
    f.kind = EventKind::auth_failure;
    f.reason = "proxy_dest_auth_failed";
  } else if (contains(msg, "tarted proxying to ")) {
    f.kind = EventKind::auth_success;
    f.reason = "proxy_login";
  } else {
    return ignored();
  }
  f.outcome = NormalizeOutcome::event;
  return f;
}

Found parse_login(string_view service, string_view body) noexcept {
  const Level level = strip_level(body);
  if (level == Level::debug) return ignored();
  if (starts_with(body, "proxy(")) {
    Found f = parse_login_proxy(body);
    f.service = service;
    return f;
  }
  // The elements start at the first ": user=<" (2.2+ always log user=<>, possibly empty), else
  // at the first ": method=" or ": rip=" (older releases and custom formats). <msg> before it
  // is Dovecot's own text, so the first occurrence is the real start.
  std::size_t at = body.find(": user=<");
  if (at == npos) at = body.find(": method=");
  if (at == npos) at = body.find(": rip=");
  if (at == npos) return unmatched(body);
  const string_view msg = body.substr(0, at);
  const string_view elements = body.substr(at + 2);
  // imap_id_log (2.2/2.3): "ID sent: <client's ID strings>" is the one login message with
  // client text in <msg>; it says nothing about authentication.
  if (starts_with(msg, "ID sent: ")) return ignored();

  Found f;
  f.service = service;
  if (msg == "Login" || msg == "Logged in") {
    f.kind = EventKind::auth_success;
    f.reason = "login";
  } else if (starts_with(msg, "Login failed: Plaintext authentication disabled")) {
    // pop3-login/imap-login with verbose_auth, once per refused USER/PASS or LOGIN: one
    // attempt each. Its own reason code, because the rules engine counts it per attempt,
    // while the "tried to use disallowed plaintext auth" disconnect summary is a session total.
    f.kind = EventKind::auth_failure;
    f.reason = "plaintext_refused";
  } else {
    string_view human;
    if (!extra_reason(msg, human)) return unmatched(msg);
    const ReasonRule* rule = nullptr;
    for (const ReasonRule& r : kLoginReasons) {
      if (starts_with(human, r.prefix)) {
        rule = &r;
        break;
      }
    }
    if (rule == nullptr) {
      // A reason this table does not know: if it talks about authentication it is a format
      // change to report; timeouts and proxy states ("waited 30 secs", "state=2, ...") are not.
      return contains(human, "auth") || contains(human, "attempt") || contains(human, "fail") ||
                     contains(human, "password") || looks_like_failure(human)
                 ? unrecognized()
                 : ignored();
    }
    if (rule->outcome != NormalizeOutcome::event) return ignored();
    f.kind = rule->kind;
    f.reason = rule->reason;
    if (f.kind == EventKind::auth_failure) f.attempts = attempts_in(human);
  }
  if (!parse_login_elements(elements, f)) {
    // A line we understood whose address we cannot trust or find: a failure is reported as
    // unrecognized; a success or scanner without rip= (UNIX socket clients) is simply ignored.
    return f.kind == EventKind::auth_success || f.kind == EventKind::no_auth_disconnect
               ? ignored()
               : unrecognized();
  }
  f.outcome = NormalizeOutcome::event;
  return f;
}

// ---- auth process ------------------------------------------------------------------------

struct AuthPrefix {
  string_view user;
  IpAddress ip;
  string_view mechanism;  // 2.4 ",sasl:<mech>", lower case as logged
  string_view session;
  std::size_t message_at = 0;  // index of the text after the prefix's final ": "
};

// Tests whether the ')' at `close` ends an auth prefix whose user starts at `user_at`
// (rule 2 in the file comment). Bounded work: at most ~200 bytes around `close`.
bool prefix_ends_at(string_view text, std::size_t user_at, std::size_t close,
                    bool worker_pid_first, AuthPrefix& out) noexcept {
  // Forward: [<pid>][<session>][: request [N]]": " (2.4 puts pid and session after ')').
  std::size_t q = close + 1;
  string_view groups[2];
  int ngroups = 0;
  while (ngroups < 2 && q < text.size() && text[q] == '<') {
    std::size_t e = q + 1;
    while (e < text.size() && e - q - 1 <= kMaxSessionLength && is_session_char(text[e])) ++e;
    if (e >= text.size() || text[e] != '>' || e == q + 1) return false;
    groups[ngroups++] = text.substr(q + 1, e - q - 1);
    q = e + 1;
  }
  if (text.compare(q, 11, ": request [") == 0) {
    std::size_t e = q + 11;
    while (e < text.size() && is_digit(text[e]) && e - q < 24) ++e;
    if (e == q + 11 || e >= text.size() || text[e] != ']') return false;
    q = e + 1;
  }
  if (text.compare(q, 2, ": ") != 0) return false;
  string_view session;
  if (ngroups == 2) {
    if (!all_digits(groups[0])) return false;
    session = groups[1];
  } else if (ngroups == 1) {
    if (worker_pid_first) {
      if (!all_digits(groups[0])) return false;
    } else {
      session = groups[0];
    }
  }

  // Backward, inside the parentheses: [,<session>|,] then up to two of ",master" and
  // ",sasl:<mech>", then ",<ip>".
  std::size_t e = close;
  if (e > user_at && text[e - 1] == '>') {  // 2.2/2.3 ",<session>"
    std::size_t b = e - 1;
    while (b > user_at && e - 1 - b <= kMaxSessionLength && is_session_char(text[b - 1])) --b;
    if (b == e - 1 || b < user_at + 2 || text[b - 1] != '<' || text[b - 2] != ',') return false;
    if (!session.empty()) return false;
    session = text.substr(b, e - 1 - b);
    e = b - 2;
  } else if (e > user_at && text[e - 1] == ',') {  // 2.0-era empty session: "(u,1.2.3.4,)"
    e -= 1;
  }
  string_view mech;
  for (int round = 0; round < 2; ++round) {
    const string_view inside = text.substr(user_at, e - user_at);
    if (ends_with(inside, ",master")) {
      e -= 7;
      continue;
    }
    std::size_t b = e;
    while (b > user_at && e - b <= 32 && (is_lower_alnum(text[b - 1]) || text[b - 1] == '-')) --b;
    if (b < e && b >= user_at + 6 && text.compare(b - 6, 6, ",sasl:") == 0 && mech.empty()) {
      mech = text.substr(b, e - b);
      e = b - 6;
      continue;
    }
    break;
  }
  std::size_t b = e;
  while (b > user_at && e - b <= kMaxIpLength && is_ip_char(text[b - 1])) --b;
  if (b == e || b == user_at || text[b - 1] != ',') return false;
  if (!parse_client_address(text.substr(b, e - b), out.ip)) return false;
  out.user = text.substr(user_at, b - 1 - user_at);
  out.mechanism = mech;
  out.session = session;
  out.message_at = q + 2;
  return true;
}

struct AuthTemplate {
  string_view prefix;
  string_view reason;  // empty: recognised, but not an attack (no event)
};

// Messages of passdb lookups that mean "this login attempt failed" (auth_request_log_*, the
// passdb drivers and passdb-pam.c). Case as Dovecot writes it; both cases where it changed.
constexpr AuthTemplate kAuthTemplates[] = {
    {"unknown user", "unknown_user"},
    {"Password mismatch", "password_mismatch"},
    {"password mismatch", "password_mismatch"},
    {"invalid credentials", "password_mismatch"},       // LDAP bind (2.0/2.1 wording)
    {"Login failed (status=", "password_mismatch"},     // checkpassword exit 1/3/20-23
    {"Username character disallowed by auth_username_chars", "invalid_username"},
    {"Invalid username", "invalid_username"},
    {"pam_authenticate() failed: ", "pam"},             // refined below
    {"pam_acct_mgmt() failed: ", "pam_failed"},
};

// Classifies the message part of an auth line. `reason` empty and true: recognised non-event.
bool classify_auth_message(string_view message, string_view& reason) noexcept {
  for (const AuthTemplate& t : kAuthTemplates) {
    if (!starts_with(message, t.prefix)) continue;
    reason = t.reason;
    if (reason == "pam") {
      const string_view detail = message.substr(t.prefix.size());
      if (contains(detail, "missing?)")) {
        reason = {};  // "(/etc/pam.d/dovecot missing?)": configuration error, not an attack
      } else if (starts_with(detail, "User not known to the underlying authentication module")) {
        reason = "unknown_user";
      } else if (contains(detail, "password mismatch?)") || contains(detail, "Password mismatch?)")) {
        reason = "password_mismatch";
      } else {
        reason = "pam_failed";  // Permission denied, Authentication failure, ...
      }
    }
    return true;
  }
  return false;
}

// "<name>(<user>,<ip>...)...: [Level: ][<db>: ]<message>" — the 2.2/2.3 passdb prefix (name
// is the driver or passdb name) and the 2.4 process prefix (name is "auth"/"auth-worker").
Found parse_auth_prefixed(string_view text) noexcept {
  const std::size_t open = text.find('(');
  if (open == npos || open == 0 || open > kMaxProcessName) return unmatched(text);
  for (std::size_t i = 0; i < open; ++i) {
    const char c = text[i];
    if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '.')) return unmatched(text);
  }
  const string_view name = text.substr(0, open);
  const bool worker = name == "auth-worker";
  const std::size_t user_at = open + 1;

  AuthPrefix prefix;
  int candidates = 0;
  for (std::size_t close = text.find(')', user_at); close != npos;
       close = text.find(')', close + 1)) {
    AuthPrefix p;
    if (prefix_ends_at(text, user_at, close, worker, p)) {
      if (++candidates > 1) break;
      prefix = p;
    }
  }
  if (candidates > 1) return unrecognized();  // a prefix inside a user name or password
  if (candidates == 0) {
    // No address: a request from a client that sent none ("passwd-file(alice): unknown user",
    // doveadm auth test) cannot be attributed; anything else is a format we do not know.
    const std::size_t end = text.find("): ", user_at);
    string_view reason;
    if (end != npos) {
      string_view message = text.substr(end + 3);
      strip_level(message);
      if (classify_auth_message(message, reason)) return ignored();
    }
    return unmatched(text);
  }

  // "<id>:R2": LMTP's lookup of a message's second and later recipients, not a client login;
  // its address (if any) is the MTA's.
  if (prefix.session.find(':') != npos) return ignored();

  string_view message = text.substr(prefix.message_at);
  const Level level = strip_level(message);
  if (level == Level::debug) return ignored();
  string_view reason;
  bool known = classify_auth_message(message, reason);
  if (!known) {
    // 2.4: "<db name>: <message>", the passdb's configured name or driver.
    const std::size_t colon = message.find(": ");
    if (colon != npos && colon > 0 && colon <= kMaxProcessName &&
        message.substr(0, colon).find(' ') == npos) {
      message.remove_prefix(colon + 2);
      known = classify_auth_message(message, reason);
    }
  }
  if (!known) return unmatched(message);
  if (reason.empty()) return ignored();

  Found f;
  f.outcome = NormalizeOutcome::event;
  f.kind = EventKind::auth_failure;
  f.reason = reason;
  f.ip = prefix.ip;
  f.has_user = true;
  f.user = prefix.user;
  f.mechanism = prefix.mechanism;
  f.session = prefix.session;
  return f;
}

// "authentication failure; logname=<l> uid=<n> euid=<n> tty=<t> ruser=<ru> rhost=<h>[  user=<u>]"
// (rule 3 in the file comment).
Found parse_pam_unix(string_view body) noexcept {
  if (!starts_with(body, "authentication failure; ")) return ignored();
  const std::size_t ruser_at = body.find(" ruser=");
  if (ruser_at == npos) return unrecognized();
  std::size_t chosen = npos, value_end = 0;
  int candidates = 0;
  for (std::size_t pos = body.find(" rhost=", ruser_at + 7); pos != npos;
       pos = body.find(" rhost=", pos + 1)) {
    std::size_t e = pos + 7;
    while (e < body.size() && body[e] != ' ') ++e;
    const string_view rest = body.substr(e);
    std::size_t trailing = 0;
    while (trailing < rest.size() && rest[trailing] == ' ') ++trailing;
    if (trailing == rest.size() || starts_with(rest, "  user=")) {
      if (++candidates > 1) return unrecognized();
      chosen = pos;
      value_end = e;
    }
  }
  if (candidates == 0) return unrecognized();
  Found f;
  if (!parse_client_address(body.substr(chosen + 7, value_end - chosen - 7), f.ip)) {
    return unrecognized();  // empty or a host name: no address we could ban
  }
  const string_view rest = body.substr(value_end);
  if (starts_with(rest, "  user=")) {
    f.user = rest.substr(7);
    while (!f.user.empty() && f.user.back() == ' ') f.user.remove_suffix(1);
  } else {
    f.user = body.substr(ruser_at + 7, chosen - ruser_at - 7);
  }
  f.has_user = !f.user.empty();
  f.outcome = NormalizeOutcome::event;
  f.kind = EventKind::auth_failure;
  f.reason = "pam_failed";
  return f;
}

// The body of a 2.2/2.3 "auth: " or "auth-worker(<pid>): " line.
Found parse_auth_body(string_view body) noexcept {
  if (strip_level(body) == Level::debug) return ignored();
  // 2.3 auth workers: "conn unix:auth-worker (pid=27359,uid=97): auth-worker<55>: ".
  if (starts_with(body, "conn ")) {
    const std::size_t at = body.substr(0, 160).find("): auth-worker<");
    if (at == npos) return unmatched(body);
    std::size_t e = at + 15;
    while (e < body.size() && is_digit(body[e])) ++e;
    if (e == at + 15 || body.compare(e, 3, ">: ") != 0) return unmatched(body);
    body.remove_prefix(e + 3);
    if (strip_level(body) == Level::debug) return ignored();
  }
  if (starts_with(body, "pam_unix(")) {
    const std::size_t end = body.find("): ");
    return end == npos ? unmatched(body) : parse_pam_unix(body.substr(end + 3));
  }
  return parse_auth_prefixed(body);
}

// ---- dispatch ----------------------------------------------------------------------------

// "<process>: <body>" where the process name is plain ("imap-login", "auth", "master").
Found dispatch_process(string_view process, string_view body, string_view whole) noexcept {
  const std::size_t bracket = process.find('[');  // "imap-login[123]" from some relays
  if (bracket != npos) process = process.substr(0, bracket);
  if (ends_with(process, "-login") && process.size() > 6) {
    return parse_login(process.substr(0, process.size() - 6), body);
  }
  if (process == "auth" || process == "dovecot-auth") return parse_auth_body(body);
  if (process.find('(') != npos) {
    // Mail processes ("imap(alice)<123><sess>", "lmtp(4321)", "lda(bob)"): ordinary traffic.
    return ignored();
  }
  return unmatched(whole);
}

// `text` starts where Dovecot's own line starts ("imap-login: ...", "auth: ...",
// "auth(alice,...)<...>: ...", "pam_unix(dovecot:auth): ...").
Found parse_text(string_view text) noexcept {
  if (starts_with(text, "dovecot: ")) text.remove_prefix(9);  // journald + old double ident
  if (starts_with(text, "auth(") || starts_with(text, "auth-worker(")) {
    // 2.2/2.3 "auth-worker(1234): " and 1.x "auth(default): " carry a process id or name;
    // everything else is 2.4's request prefix with the user in it.
    const std::size_t open = text.find('(');
    std::size_t e = open + 1;
    while (e < text.size() && is_digit(text[e]) && e - open < 12) ++e;
    if (e == open + 1 && text.compare(open + 1, 7, "default") == 0) e = open + 8;
    if (e > open + 1 && text.compare(e, 3, "): ") == 0) return parse_auth_body(text.substr(e + 3));
    return parse_auth_prefixed(text);
  }
  if (starts_with(text, "pam_unix(")) {
    const std::size_t end = text.find("): ");
    return end == npos ? unmatched(text) : parse_pam_unix(text.substr(end + 3));
  }
  const std::size_t colon = text.substr(0, kMaxProcessName).find(": ");
  if (colon == npos || colon == 0) return unmatched(text);
  return dispatch_process(text.substr(0, colon), text.substr(colon + 2), text);
}

// The Dovecot part of a message as parse_syslog split it: journald/syslog put the process
// name in MSG ("dovecot: imap-login: ..."); Dovecot's log_path files and some relays put it
// in the TAG ("imap-login: Info: ..."), where the 2.4 auth prefix "auth(user,ip,sasl:plain)<s>:"
// gets cut at the first ':' or space of its user name. There we rejoin TAG and MSG: both are
// views into the one input buffer (ingest/syslog_message.h), so the original text is the range
// from the start of the first field to the end of MSG. The join is only made when the fields
// lie in order and close together, as parse_syslog leaves them.
bool join(string_view first, string_view message, string_view& text) noexcept {
  const auto first_at = reinterpret_cast<std::uintptr_t>(first.data());
  const auto first_end = first_at + first.size();
  const auto message_at = reinterpret_cast<std::uintptr_t>(message.data());
  if (message.empty() || message_at < first_end || message_at - first_end > 160) return false;
  text = string_view(first.data(), message_at - first_at + message.size());
  return true;
}

// TAGs under which Dovecot's log_path files (or relays of them) name the process.
bool is_dovecot_process_tag(string_view app) noexcept {
  return app == "auth" || starts_with(app, "auth(") || starts_with(app, "auth-worker") ||
         ends_with(app, "-login") || app.find("-login[") != npos || starts_with(app, "pam_unix(");
}

}  // namespace

NormalizeResult normalize_dovecot(const ingest::SyslogMessage& msg, AuthEvent& out) noexcept {
  NormalizeResult result;
  result.source = EventSource::dovecot;
  const string_view app = msg.app_name;

  Found f;
  string_view program = app;
  if (app.empty()) {
    // Dovecot under daemontools/s6 (multilog): "@<TAI64N label> imap-login: Info: ...", no
    // syslog header, so the parser found no tag. The label is not decoded (it is TAI, not UTC,
    // and the syslog parser owns timestamps): such events carry no time.
    const string_view m = msg.message;
    if (m.size() < 27 || m[0] != '@' || m[25] != ' ') return result;
    for (std::size_t i = 1; i < 25; ++i)
      if (!is_hex(m[i])) return result;
    const string_view text = m.substr(26);
    program = text.substr(0, std::min(text.find(':'), text.find('(')));
    if (program != "dovecot" && program != "dovecot-auth" && !is_dovecot_process_tag(program)) {
      return result;
    }
    f = parse_text(text);
  } else if (app == "dovecot" || app == "dovecot-auth") {
    // The common case. Fast exit for the mail processes' own lines, most Dovecot traffic.
    const string_view m = msg.message;
    if (m.size() < 6) return result;
    if (starts_with(m, "imap(") || starts_with(m, "pop3(") || starts_with(m, "lmtp(") ||
        starts_with(m, "lda(")) {
      return result;
    }
    f = parse_text(m);
  } else if (is_dovecot_process_tag(app)) {
    string_view text;
    if (join(app, msg.message, text)) {
      f = parse_text(text);
    } else if (app.find('(') == npos) {
      f = dispatch_process(app, msg.message, msg.message);  // fields not from one buffer
    } else {
      return result;
    }
    const std::size_t paren = app.find('(');
    if (paren != npos) program = app.substr(0, paren);  // "auth(alice,..." -> "auth"
  } else if (msg.format == ingest::SyslogFormat::rfc3164 && !msg.hostname.empty() &&
             (starts_with(msg.hostname, "auth(") || starts_with(msg.hostname, "auth-worker("))) {
    // 2.4 log_path line whose user name held a space: the parser took "auth(first" for a host.
    string_view text;
    if (!join(msg.hostname, msg.message, text)) return result;
    f = parse_text(text);
    program = msg.hostname.substr(0, msg.hostname.find('('));
  } else {
    return result;
  }

  result.outcome = f.outcome;
  if (f.outcome != NormalizeOutcome::event) return result;

  out = AuthEvent{};
  out.has_time = msg.has_time;
  out.time = msg.time;
  out.host = program.data() == msg.hostname.data() ? string_view() : msg.hostname;
  out.program = program;
  out.source = EventSource::dovecot;
  out.service = f.service;
  out.kind = f.kind;
  out.reason = f.reason;
  out.ip = f.ip;
  out.port = f.port;
  out.has_user = f.has_user;
  out.user = f.user;
  out.mechanism.clear();
  for (char c : f.mechanism) {
    const char u = to_upper(c);
    out.mechanism.append(string_view(&u, 1));
  }
  out.attempts = f.attempts;
  out.session.assign(f.session);
  return result;
}

}  // namespace authwall::normalize
