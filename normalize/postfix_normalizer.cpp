// Postfix -> AuthEvent: the smtpd(8) and postscreen(8) lines that matter for authentication
// abuse, matched by hand-written anchored templates (see normalizer.h for the safety contract).
//
// Every template is derived from the format strings in the Postfix sources (2.x to 3.9):
//   smtpd/smtpd_sasl_glue.c  "%s: SASL %s authentication failed: %s"            (2.x)
//                            "%s: SASL %.100s authentication failed: %s, sasl_username=%.100s"
//                            "%s: SASL %s authentication aborted"
//   smtpd/smtpd.c            "disconnect from %s%s" (3.0+: " ehlo=1 auth=0/1 ... commands=N/M")
//                            "%s after %s from %s" (lost connection, timeout, too many errors)
//                            "improper command pipelining after %s from %s: %s"
//                            "non-SMTP command from %s: %.100s"
//                            "... rate limit exceeded: %d from %s for service %s"
//                            "%s: client=%s, sasl_method=%s, sasl_username=%s[, sasl_sender=%s]"
//   smtpd/smtpd_check.c      "%s: reject: %s from %s: %s; from=<%s> to=<%s> proto=%s helo=<%s>"
//   postscreen/*.c           "PREGREET %d after %s from [%s]:%s: %.100s", "HANGUP after %s from
//                            [%s]:%s in %s", "COMMAND {COUNT,TIME,LENGTH} LIMIT from [%s]:%s",
//                            "COMMAND PIPELINING from [%s]:%s after %s: %s", "NON-SMTP COMMAND
//                            from [%s]:%s ...", "BARE NEWLINE from [%s]:%s", "DNSBL rank %d for
//                            [%s]:%s", "BLACKLISTED [%s]:%s" (3.6+: "DENYLISTED"), "NOQUEUE:
//                            reject: {RCPT,CONNECT} from [%s]:%s: ..."
// where "%s" for the client is smtpd's namaddr: "name[addr]", or "name[addr]:port" with
// smtpd_client_port_logging. The name is a validated reverse-DNS name (valid_hostname(): letters,
// digits, '.', '-', '_') or "unknown"; the address comes from the socket (or "unknown").
//
// Safety: the client is read only at the fixed position of each template, right after literal
// text Postfix itself writes, and never from what follows (HELO, envelope addresses, SASL user
// names, pipelined data, reply text). A name that is not a valid hostname, an address that
// does not parse, or anything but the expected continuation after "]" rejects the line
// (reported as unrecognised, never as an event).
//
// Speed: a message from another program is rejected after comparing the first bytes of its
// tag; Postfix programs other than smtpd/postscreen (qmgr, cleanup, smtp, ...) are rejected from
// the tag alone; smtpd/postscreen lines are dispatched on their first bytes. No allocation.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "normalize/line_cursor.h"
#include "normalize/normalizer.h"

namespace authwall::normalize {
namespace {

using std::string_view;
constexpr auto npos = string_view::npos;

// ---------------------------------------------------------------------------------------------
// The syslog tag.

enum class Process : std::uint8_t {
  smtpd,
  postscreen,
  unknown,  // APP-NAME "postfix" alone, or a 32-character cut tag: the content decides
  other,    // qmgr, cleanup, smtp, anvil, ...: nothing for us
};

struct Tag {
  Process process = Process::other;
  string_view service;  // empty = null
};

// rsyslog's default forward template keeps the first 32 characters of TAG and loses "[pid]:".
constexpr std::size_t kTruncatedTagLength = 32;

Process process_of(string_view name) noexcept {
  if (name == "smtpd") return Process::smtpd;
  if (name == "postscreen") return Process::postscreen;
  return Process::other;
}

// Recognises "postfix", "postfix-<instance>", each optionally followed by "/<service...>" and
// "/<process>". Returns false for every other program.
bool parse_tag(const ingest::SyslogMessage& msg, Tag& tag) noexcept {
  const string_view app = msg.app_name;
  constexpr string_view kPostfix = "postfix";
  if (app.size() < kPostfix.size() || app.substr(0, kPostfix.size()) != kPostfix) return false;
  if (app.size() > kPostfix.size() && app[kPostfix.size()] != '/' &&
      app[kPostfix.size()] != '-') {
    return false;  // "postfixadmin", ...
  }
  const std::size_t first_slash = app.find('/');
  if (first_slash == npos) {  // "postfix" (RFC 5424 APP-NAME) or "postfix-out": no service
    tag.process = Process::unknown;
    tag.service = {};
    return true;
  }
  const std::size_t last_slash = app.rfind('/');
  const string_view last = app.substr(last_slash + 1);
  const bool truncated = msg.procid.empty() && app.size() == kTruncatedTagLength;
  const Process named = process_of(last);
  if (first_slash == last_slash) {
    // "postfix/smtpd": the plain smtp service. A cut tag whose second part is not a process
    // name is the start of a longer syslog_name ("postfix/submissions-proxyprotoco"): the
    // service is that text as received, the process is unknown.
    if (named != Process::other) {
      tag.process = named;
      tag.service = "smtp";
    } else if (truncated) {
      tag.process = Process::unknown;
      tag.service = last;
    } else {
      tag.process = Process::other;
      tag.service = {};
    }
    return true;
  }
  // "postfix/<service>/<process>", "postfix-out/<service>/<process>".
  tag.service = app.substr(first_slash + 1, last_slash - first_slash - 1);
  // In a cut tag the last part may be a cut process name ("smtp" for "smtpd").
  tag.process = (truncated && named == Process::other) ? Process::unknown : named;
  return true;
}

// ---------------------------------------------------------------------------------------------
// The client, "name[addr]" or "name[addr]:port".

enum class ClientStatus : std::uint8_t {
  address,    // a valid address (and maybe a port)
  no_address, // "name[unknown]": the template matched but there is no one to blame
  malformed,  // not Postfix's namaddr: the line must not yield an event
};

struct Client {
  IpAddress ip;
  std::int32_t port = -1;
};

// RFC 1035 names are at most 255 characters; Postfix's valid_hostname() enforces that.
constexpr std::size_t kMaxHostName = 255;
// The longest address text is 45 characters; anything much longer is not an address.
constexpr std::size_t kMaxBracketed = 64;

constexpr bool is_hostname_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Reads the client at the cursor. On `address` and `no_address` the cursor is moved past the
// closing bracket and the optional ":port"; on `malformed` it is left where it was.
ClientStatus take_client(LineCursor& cursor, Client& out) noexcept {
  const string_view r = cursor.rest();
  std::size_t i = 0;
  while (i < r.size() && i <= kMaxHostName && is_hostname_char(r[i])) ++i;
  // The name ends at the bracket and nowhere else: a space, a ']' or any other byte inside a
  // name means this is not Postfix's namaddr.
  if (i > kMaxHostName || i >= r.size() || r[i] != '[') return ClientStatus::malformed;
  const std::size_t open = i;
  std::size_t close = open + 1;
  while (close < r.size() && close - open <= kMaxBracketed && r[close] != ']' &&
         r[close] != '[') {
    ++close;
  }
  if (close >= r.size() || r[close] != ']') return ClientStatus::malformed;
  string_view addr = r.substr(open + 1, close - open - 1);
  std::size_t after = close + 1;
  std::int32_t port = -1;
  if (after + 1 < r.size() && r[after] == ':' && is_digit(r[after + 1])) {
    std::size_t p = after + 1;
    std::int32_t value = 0;
    while (p < r.size() && is_digit(r[p]) && p - after <= 5) {
      value = value * 10 + (r[p] - '0');
      ++p;
    }
    if (p < r.size() && is_digit(r[p])) return ClientStatus::malformed;  // 6+ digits
    if (value > 65535) return ClientStatus::malformed;
    port = value;
    after = p;
  }
  if (addr == "unknown") {
    cursor = LineCursor(r.substr(after));
    return ClientStatus::no_address;
  }
  // Postfix prints IPv6 clients bare ("[2001:db8::1]", smtpd_peer.c); the "IPv6:" form belongs
  // to address literals in HELO and headers and is not accepted here.
  if (!IpAddress::parse(addr, out.ip)) return ClientStatus::malformed;
  out.port = port;
  cursor = LineCursor(r.substr(after));
  return ClientStatus::address;
}

// ---------------------------------------------------------------------------------------------
// Template results.

enum class Verdict : std::uint8_t { event, ignored, unrecognized };

struct Match {
  EventKind kind = EventKind::auth_failure;
  string_view reason;
  Client client;
  std::uint32_t attempts = 1;
  bool has_user = false;
  string_view user;
  string_view mechanism;
};

bool contains(string_view text, string_view needle) noexcept { return text.find(needle) != npos; }

bool starts_with(string_view text, string_view prefix) noexcept {
  return text.substr(0, prefix.size()) == prefix;
}

// What may follow the client in a template: the end of the message, or a separator.
bool at_end_or(const LineCursor& c, char separator) noexcept {
  return c.at_end() || c.rest().front() == separator;
}

// Reads the client and, when the continuation is right, records the event.
Verdict client_event(LineCursor& c, Match& m, EventKind kind, string_view reason,
                     char separator) noexcept {
  switch (take_client(c, m.client)) {
    case ClientStatus::no_address:
      return Verdict::ignored;
    case ClientStatus::malformed:
      return Verdict::unrecognized;
    case ClientStatus::address:
      break;
  }
  if (!at_end_or(c, separator)) return Verdict::unrecognized;
  m.kind = kind;
  m.reason = reason;
  return Verdict::event;
}

// Character classes of the tokens Postfix itself writes between literal text.
constexpr bool is_mechanism_char(char c) noexcept { return c > ' ' && c < 127; }
constexpr bool is_command_char(char c) noexcept { return (c >= 'A' && c <= 'Z') || c == '-'; }
constexpr bool is_delay_char(char c) noexcept { return is_digit(c) || c == '.'; }

// A bounded, non-empty token of `Pred` characters followed by one space.
template <typename Pred>
bool take_token(LineCursor& c, string_view& out, std::size_t max_length, Pred pred) noexcept {
  const string_view r = c.rest();
  std::size_t i = 0;
  while (i < r.size() && i <= max_length && pred(r[i])) ++i;
  if (i == 0 || i > max_length || i >= r.size() || r[i] != ' ') return false;
  out = r.substr(0, i);
  c = LineCursor(r.substr(i + 1));
  return true;
}

// ---------------------------------------------------------------------------------------------
// smtpd: SASL.

// Reply texts that mean the authentication service failed, not the client: xsasl_dovecot_server.c
// ("Connection lost to authentication server", "Can't connect to authentication server") and
// temporary failures passed on from Dovecot or Cyrus. An outage is not an attack.
bool is_outage_reason(string_view reason) noexcept {
  return contains(reason, "authentication server") || contains(reason, "emporary failure") ||
         contains(reason, "emporary authentication failure");
}

// After "warning: <client>": ": SASL <mech> authentication failed[: <reason>[, sasl_username=<u>]]"
// or ": SASL <mech> authentication aborted".
Verdict match_sasl(LineCursor c, Match& m) noexcept {
  if (!c.consume(": SASL ")) return Verdict::unrecognized;
  string_view mech;
  if (!take_token(c, mech, 100, is_mechanism_char)) {  // smtpd logs %.100s
    return Verdict::unrecognized;
  }
  if (!c.consume("authentication ")) return Verdict::unrecognized;
  m.mechanism = mech;
  if (c.consume("aborted")) {
    if (!c.at_end()) return Verdict::unrecognized;
    m.kind = EventKind::protocol_abuse;
    m.reason = "sasl_aborted";
    return Verdict::event;
  }
  if (!c.consume("failed")) return Verdict::unrecognized;
  string_view reason;
  if (!c.at_end()) {
    // 2.x with an empty reply text logs "failed: " (the trailing space may be gone).
    if (!c.consume(":")) return Verdict::unrecognized;
    c.skip_spaces();
    reason = c.rest();
  }
  // 3.x: ", sasl_username=<name>" follows the reason. The reason is the SASL server's text, the
  // name is the client's: split at the first marker, so nothing in the name can shorten the
  // reason (or hide an outage reason in it).
  constexpr string_view kUserMarker = ", sasl_username=";
  const std::size_t marker = reason.find(kUserMarker);
  if (marker != npos) {
    const string_view user = reason.substr(marker + kUserMarker.size());
    reason = reason.substr(0, marker);
    // "(unavailable)" is what Postfix prints when the server returned no name.
    if (user != "(unavailable)") {
      m.has_user = true;
      m.user = user;
    }
  }
  if (is_outage_reason(reason)) return Verdict::ignored;
  m.kind = EventKind::auth_failure;
  m.reason = "sasl_failed";
  return Verdict::event;
}

// ---------------------------------------------------------------------------------------------
// smtpd: the rest of "warning: ...".

// "<what> limit exceeded: N from <client> for service <name>" (smtpd.c: connection rate and
// concurrency, message, recipient, new TLS session, AUTH command rate limits).
Verdict match_limit(string_view rest, Match& m) noexcept {
  constexpr string_view kMarker = "limit exceeded: ";
  constexpr std::size_t kMaxWhat = 48;  // "Message delivery request rate " is the longest
  const std::size_t pos = rest.substr(0, kMaxWhat + kMarker.size()).find(kMarker);
  if (pos == npos) return Verdict::unrecognized;
  for (std::size_t i = 0; i < pos; ++i) {
    const char ch = rest[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == ' ')) {
      return Verdict::unrecognized;
    }
  }
  LineCursor c(rest.substr(pos + kMarker.size()));
  int count = 0;
  if (!c.take_uint(count) || !c.consume(" from ")) return Verdict::unrecognized;
  return client_event(c, m, EventKind::protocol_abuse, "rate_limit", ' ');
}

Verdict match_warning(string_view rest, Match& m) noexcept {
  LineCursor c(rest);
  if (c.consume("non-SMTP command from ")) {
    return client_event(c, m, EventKind::protocol_abuse, "non_smtp_command", ':');
  }
  if (c.consume("Illegal address syntax from ")) {
    return client_event(c, m, EventKind::protocol_abuse, "illegal_address_syntax", ' ');
  }
  // Cyrus SASL's own diagnostics ("SASL authentication failure: Password verification failed",
  // "SASL authentication problem: unable to open Berkeley db") and Dovecot socket errors
  // ("SASL: Connect to private/auth failed"): they carry no client, and the client-bearing
  // "... SASL LOGIN authentication failed" line that accompanies a real failure is counted.
  if (c.starts_with("SASL authentication ") || c.starts_with("SASL: ")) return Verdict::ignored;
  if (contains(rest.substr(0, 64), "limit exceeded: ")) return match_limit(rest, m);
  // "warning: <client>: ..." : SASL failures and aborts.
  LineCursor at_client = c;
  switch (take_client(at_client, m.client)) {
    case ClientStatus::no_address:
      // "unknown[unknown]: SASL ... failed": nobody to count it against.
      return starts_with(at_client.rest(), ": SASL ") ? Verdict::ignored : Verdict::unrecognized;
    case ClientStatus::malformed:
      // Most warnings name no client ("hostname x does not resolve to address y"); one that
      // has a bracket where no template expects it is a format we do not know.
      return rest.find('[') == npos ? Verdict::ignored : Verdict::unrecognized;
    case ClientStatus::address:
      break;
  }
  return match_sasl(at_client, m);
}

// ---------------------------------------------------------------------------------------------
// smtpd: session ends.

// "disconnect from <client>[ name=N[/M] ... commands=N[/M]]". Postfix 3.0+ appends the command
// statistics: "auth=0/3" is 0 successful AUTH commands out of 3.
Verdict match_disconnect(LineCursor c, Match& m) noexcept {
  switch (take_client(c, m.client)) {
    case ClientStatus::no_address:
      return Verdict::ignored;
    case ClientStatus::malformed:
      return Verdict::unrecognized;
    case ClientStatus::address:
      break;
  }
  if (c.at_end()) return Verdict::ignored;  // Postfix 2.x: no statistics
  if (!c.consume(" ")) return Verdict::unrecognized;
  bool has_auth = false;
  bool has_mail = false;
  int auth_ok = 0;
  int auth_total = 0;
  while (!c.at_end()) {
    const string_view r = c.rest();
    std::size_t i = 0;
    while (i < r.size() && r[i] >= 'a' && r[i] <= 'z') ++i;
    if (i == 0 || i >= r.size() || r[i] != '=') return Verdict::unrecognized;
    const string_view name = r.substr(0, i);
    c = LineCursor(r.substr(i + 1));
    int ok = 0;
    if (!c.take_uint(ok)) return Verdict::unrecognized;
    int total = ok;
    if (c.consume("/") && !c.take_uint(total)) return Verdict::unrecognized;
    if (!c.at_end() && !c.consume(" ")) return Verdict::unrecognized;
    if (name == "auth") {
      has_auth = true;
      auth_ok = ok;
      auth_total = total;
    } else if (name == "mail") {
      has_mail = true;
    }
  }
  if (has_auth) {
    if (auth_total <= auth_ok) return Verdict::ignored;  // every AUTH succeeded
    m.kind = EventKind::auth_failure;
    m.reason = "disconnect_auth_failed";
    m.attempts = static_cast<std::uint32_t>(auth_total - auth_ok);
    return Verdict::event;
  }
  // Neither AUTH nor MAIL: the client tried nothing a mail client or an MTA would do (port
  // scanners, TLS probes, "EHLO; QUIT" banner grabbers). Monitoring checks look the same; they
  // belong in never_ban.
  if (has_mail) return Verdict::ignored;
  m.kind = EventKind::no_auth_disconnect;
  m.reason = "no_auth";
  return Verdict::event;
}

// "<reason> after <WHERE>[ (N bytes)] from <client>" for "lost connection", "timeout" and
// "too many errors" (smtpd.c, smtpd_proto()).
Verdict match_after(LineCursor c, Match& m, string_view what) noexcept {
  string_view where;
  if (!take_token(c, where, 32, is_command_char)) return Verdict::unrecognized;
  if (c.starts_with("(")) {  // "after DATA (1234 bytes) from", 3.x
    string_view bytes;
    if (!c.take_until(") ", bytes) || bytes.size() > 32) return Verdict::unrecognized;
  }
  if (!c.consume("from ")) return Verdict::unrecognized;
  string_view reason;
  if (what == "too many errors") {
    reason = "too_many_errors";
  } else if (where == "AUTH") {
    reason = what == "timeout" ? string_view("timeout_after_auth")
                               : string_view("lost_connection_after_auth");
  } else {
    // A dropped connection outside AUTH is reported once, by the "disconnect from ..."
    // statistics that always follow (3.x); 2.x has no statistics and such drops stay unseen.
    Client ignored_client;
    LineCursor probe = c;
    const ClientStatus st = take_client(probe, ignored_client);
    return st == ClientStatus::malformed ? Verdict::unrecognized : Verdict::ignored;
  }
  return client_event(c, m, EventKind::protocol_abuse, reason, ' ');
}

// ---------------------------------------------------------------------------------------------
// Rejections: "<queue id or NOQUEUE>: reject: <STAGE> from <client>: <reply>; from=<...> ..."

bool is_stage_char(char c) noexcept { return (c >= 'A' && c <= 'Z') || c == '-'; }

// The short code for a reply text. Best effort by design: the text quotes the client's own
// envelope address, so a client can at most move its own event between `rejected` reasons.
// Never the kind, never the address.
string_view reject_reason(string_view reply) noexcept {
  // The reply ends where Postfix appends the envelope ("; from=<" in both smtpd and postscreen).
  const std::size_t env = reply.find("; from=<");
  if (env != npos) reply = reply.substr(0, env);
  const bool temporary = !reply.empty() && reply.front() == '4';
  // Skip the quoted address ("<x@y>: Recipient address rejected: ..."): Postfix's own text is
  // after the last ">: ".
  const std::size_t quoted = reply.rfind(">: ");
  const string_view text = quoted == npos ? reply : reply.substr(quoted + 3);
  if (contains(text, "Relay access denied")) return "relay_denied";
  if (contains(text, "User unknown") || contains(text, "user unknown")) return "unknown_recipient";
  if (contains(text, " blocked using ")) return "dnsbl";
  if (contains(text, "Helo command rejected")) return "helo_rejected";
  if (contains(text, "Client host rejected")) return "client_rejected";
  if (contains(text, "Sender address rejected")) return "sender_rejected";
  if (contains(text, "Recipient address rejected")) return "recipient_rejected";
  if (contains(text, "Protocol error")) return "protocol_error";
  return temporary ? "reject_temporary" : "reject";
}

// After "<queue id>: " or "NOQUEUE: ".
Verdict match_queue_action(LineCursor c, Match& m) noexcept {
  bool milter = false;
  if (c.consume("reject: ")) {
  } else if (c.consume("milter-reject: ")) {
    milter = true;
  } else {
    // "reject_warning:" (warn_if_reject: a dry run), "filter:", "hold:", "discard:",
    // "redirect:", "warning: header ..." and the rest: policy bookkeeping, not client abuse.
    return Verdict::ignored;
  }
  const string_view r = c.rest();
  std::size_t i = 0;
  while (i < r.size() && i < 32 && is_stage_char(r[i])) ++i;
  if (i == 0 || i >= r.size() || r[i] != ' ') {
    // cleanup(8)'s header/body checks ("reject: header Subject: ... from host[addr]; ...")
    // quote message content before the client: nothing there can be trusted, and content
    // policy is not client abuse.
    if (starts_with(r, "header ") || starts_with(r, "body ")) return Verdict::ignored;
    return Verdict::unrecognized;
  }
  const string_view stage = r.substr(0, i);
  c = LineCursor(r.substr(i + 1));
  if (!c.consume("from ")) return Verdict::unrecognized;
  switch (take_client(c, m.client)) {
    case ClientStatus::no_address:
      return Verdict::ignored;
    case ClientStatus::malformed:
      return Verdict::unrecognized;
    case ClientStatus::address:
      break;
  }
  if (!c.at_end() && !c.consume(": ")) return Verdict::unrecognized;
  const string_view reply = c.rest();
  if (stage == "CONNECT" && !milter) {
    // postscreen: per-client concurrency is the client's doing; a full server is not.
    if (starts_with(reply, "too many connections")) {
      m.kind = EventKind::protocol_abuse;
      m.reason = "rate_limit";
      return Verdict::event;
    }
    if (starts_with(reply, "all server ports busy")) return Verdict::ignored;
  }
  m.kind = EventKind::rejected;
  m.reason = milter ? string_view("milter_reject") : reject_reason(reply);
  return Verdict::event;
}

// "<queue id>: client=<client>, sasl_method=<mech>, sasl_username=<user>[, sasl_sender=<s>]".
Verdict match_client_line(LineCursor c, Match& m) noexcept {
  switch (take_client(c, m.client)) {
    case ClientStatus::no_address:
    case ClientStatus::malformed:
      // A line Postfix writes for every accepted message: never worth an "unrecognised".
      return Verdict::ignored;
    case ClientStatus::address:
      break;
  }
  if (!c.consume(", sasl_method=")) return Verdict::ignored;  // not an authenticated client
  string_view mech;
  if (!c.take_until(", sasl_username=", mech) || mech.size() > 100) return Verdict::unrecognized;
  string_view user = c.rest();
  const std::size_t sender = user.find(", sasl_sender=");
  if (sender != npos) user = user.substr(0, sender);
  m.kind = EventKind::auth_success;
  m.reason = "sasl_login";
  m.mechanism = mech;
  m.has_user = true;
  m.user = user;
  return Verdict::event;
}

// A Postfix queue ID: hex ("4C1C3A1F2B") or the long base-52 form ("4XxYz12abcz3Tq1").
bool take_queue_id(LineCursor& c) noexcept {
  const string_view r = c.rest();
  std::size_t i = 0;
  while (i < r.size() && i < 32 &&
         ((r[i] >= '0' && r[i] <= '9') || (r[i] >= 'A' && r[i] <= 'Z') ||
          (r[i] >= 'a' && r[i] <= 'z'))) {
    ++i;
  }
  if (i < 5 || i + 1 >= r.size() || r[i] != ':' || r[i + 1] != ' ') return false;
  c = LineCursor(r.substr(i + 2));
  return true;
}

// ---------------------------------------------------------------------------------------------
// postscreen.

Verdict match_postscreen(LineCursor c, Match& m, bool& matched) noexcept {
  matched = true;
  if (c.consume("PREGREET ")) {
    int bytes = 0;
    string_view delay;
    if (!c.take_uint(bytes) || !c.consume(" after ") || !take_token(c, delay, 32, is_delay_char) ||
        !c.consume("from ")) {
      return Verdict::unrecognized;
    }
    return client_event(c, m, EventKind::protocol_abuse, "pregreet", ':');
  }
  if (c.consume("HANGUP after ")) {
    string_view delay;
    if (!take_token(c, delay, 32, is_delay_char) || !c.consume("from ")) {
      return Verdict::unrecognized;
    }
    return client_event(c, m, EventKind::protocol_abuse, "hangup", ' ');
  }
  if (c.consume("COMMAND ")) {
    string_view reason;
    if (c.consume("COUNT LIMIT from ")) {
      reason = "command_count_limit";
    } else if (c.consume("TIME LIMIT from ")) {
      reason = "command_time_limit";
    } else if (c.consume("LENGTH LIMIT from ")) {
      reason = "command_length_limit";
    } else if (c.consume("PIPELINING from ")) {
      reason = "pipelining";
    } else {
      return Verdict::unrecognized;
    }
    return client_event(c, m, EventKind::protocol_abuse, reason, ' ');
  }
  if (c.consume("NON-SMTP COMMAND from ")) {
    return client_event(c, m, EventKind::protocol_abuse, "non_smtp_command", ' ');
  }
  if (c.consume("BARE NEWLINE from ")) {
    return client_event(c, m, EventKind::protocol_abuse, "bare_newline", ' ');
  }
  if (c.consume("DNSBL rank ")) {
    int rank = 0;
    if (!c.take_uint(rank) || !c.consume(" for ")) return Verdict::unrecognized;
    return client_event(c, m, EventKind::rejected, "dnsbl", ' ');
  }
  // postscreen_access_list "reject": BLACKLISTED before 3.6, DENYLISTED since.
  if (c.consume("DENYLISTED ") || c.consume("BLACKLISTED ")) {
    return client_event(c, m, EventKind::rejected, "denylisted", ' ');
  }
  matched = false;
  return Verdict::ignored;
}

// ---------------------------------------------------------------------------------------------
// Dispatch.

// Lines that look like a failure but matched no template: a format we do not know yet.
// Everything here names a client in brackets; ordinary traffic that does ("connect from",
// "Anonymous TLS connection established from") carries none of the words.
bool looks_like_failure(string_view text) noexcept {
  if (text.find('[') == npos) return false;
  return starts_with(text, "warning: ") || contains(text, "reject") || contains(text, "SASL") ||
         contains(text, "authentication") || contains(text, "LIMIT") ||
         contains(text, "limit exceeded");
}

Verdict fallback(string_view text) noexcept {
  return looks_like_failure(text) ? Verdict::unrecognized : Verdict::ignored;
}

Verdict match_smtpd(string_view text, Match& m) noexcept {
  LineCursor c(text);
  switch (text.front()) {
    case 'w':
      if (c.consume("warning: ")) return match_warning(c.rest(), m);
      break;
    case 'd':
      if (c.consume("disconnect from ")) return match_disconnect(c, m);
      break;
    case 'c':
      if (c.starts_with("connect from ")) return Verdict::ignored;
      break;
    case 'l':
      if (c.consume("lost connection after ")) return match_after(c, m, "lost connection");
      break;
    case 't':
      if (c.consume("timeout after ")) return match_after(c, m, "timeout");
      if (c.consume("too many errors after ")) return match_after(c, m, "too many errors");
      break;
    case 'i':
      if (c.consume("improper command pipelining after ")) {
        string_view where;
        if (!take_token(c, where, 32, is_command_char) || !c.consume("from ")) {
          return Verdict::unrecognized;
        }
        return client_event(c, m, EventKind::protocol_abuse, "pipelining", ':');
      }
      break;
    case 'N':
      if (c.consume("NOQUEUE: ")) return match_queue_action(c, m);
      break;
    default:
      break;
  }
  // "<queue id>: client=..." / "<queue id>: reject: ..." / "<queue id>: milter-reject: ...".
  LineCursor q(text);
  if (take_queue_id(q)) {
    if (q.consume("client=")) return match_client_line(q, m);
    return match_queue_action(q, m);
  }
  return fallback(text);
}

Verdict dispatch(Process process, string_view text, Match& m) noexcept {
  if (text.empty()) return Verdict::ignored;
  const bool noqueue = starts_with(text, "NOQUEUE: ");
  // postscreen's own events all start with an upper-case word ("PREGREET", "DNSBL", ...).
  if (process != Process::smtpd && !noqueue && text.front() >= 'A' && text.front() <= 'Z') {
    bool matched = false;
    const Verdict v = match_postscreen(LineCursor(text), m, matched);
    if (matched) return v;
  }
  if (process == Process::postscreen) {
    // postscreen shares only "NOQUEUE: reject:" with smtpd.
    if (noqueue) return match_queue_action(LineCursor(text.substr(9)), m);
    return fallback(text);
  }
  return match_smtpd(text, m);
}

void upper_case_into(string_view text, InlineString<32>& out) noexcept {
  out.assign(text);
  for (std::size_t i = 0; i < out.size; ++i) {
    char& ch = out.data[i];
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  }
}

}  // namespace

NormalizeResult normalize_postfix(const ingest::SyslogMessage& msg, AuthEvent& out) noexcept {
  Tag tag;
  if (!parse_tag(msg, tag) || tag.process == Process::other) {
    return {NormalizeOutcome::ignored, EventSource::postfix};
  }
  Match m;
  switch (dispatch(tag.process, msg.message, m)) {
    case Verdict::ignored:
      return {NormalizeOutcome::ignored, EventSource::postfix};
    case Verdict::unrecognized:
      return {NormalizeOutcome::unrecognized, EventSource::postfix};
    case Verdict::event:
      break;
  }
  out = AuthEvent{};
  out.has_time = msg.has_time;
  out.time = msg.time;
  out.host = msg.hostname;
  out.program = msg.app_name;
  out.source = EventSource::postfix;
  out.service = tag.service;
  out.kind = m.kind;
  out.reason = m.reason;
  out.ip = m.client.ip;
  out.port = m.client.port;
  out.has_user = m.has_user;
  out.user = m.user;
  if (!m.mechanism.empty()) upper_case_into(m.mechanism, out.mechanism);
  out.attempts = m.attempts;
  // Postfix has no session id; smtpd serves one client at a time, so host + pid + client ties
  // the lines of one connection (the SASL warnings and the "disconnect" summary).
  if (!msg.procid.empty()) {
    char ip_text[IpAddress::kMaxTextLength];
    const std::size_t n = m.client.ip.format(ip_text);
    out.session.assign(msg.hostname);
    out.session.append("/");
    out.session.append(msg.procid);
    out.session.append("/");
    out.session.append(string_view(ip_text, n));
  }
  return {NormalizeOutcome::event, EventSource::postfix};
}

}  // namespace authwall::normalize
