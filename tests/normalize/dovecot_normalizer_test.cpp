// normalize_dovecot: direct unit tests. The per-format coverage lives in the golden files
// tests/golden/dovecot-*.log (run by golden_test.cpp); this file checks what a golden file
// cannot: the safety property over many generated hostile user names, messages whose fields
// do not come from one buffer, and the exact field values of a few representative lines.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/civil_time.h"
#include "common/ip_address.h"
#include "ingest/syslog_message.h"
#include "ingest/syslog_parser.h"
#include "normalize/auth_event.h"
#include "normalize/normalizer.h"

namespace authwall::normalize {
namespace {

constexpr UnixMicros kNow = (days_from_civil(2026, 11, 28) * 86400 + 12 * 3600) * kMicrosPerSecond;

struct Parsed {
  ingest::SyslogParseError parse_error = ingest::SyslogParseError::ok;
  NormalizeResult result;
  AuthEvent event;
};

// `line` must outlive the returned event (its views point into it).
Parsed run(const std::string& line) {
  Parsed p;
  ingest::SyslogMessage msg;
  p.parse_error = ingest::parse_syslog(line, kNow, msg);
  if (p.parse_error == ingest::SyslogParseError::ok) p.result = normalize_dovecot(msg, p.event);
  return p;
}

std::string ip_of(const AuthEvent& e) { return e.ip.to_string(); }

TEST(DovecotNormalizer, LoginFailureFieldsAreExact) {
  const std::string line =
      "Nov 28 10:00:00 mx1 dovecot: imap-login: Disconnected (auth failed, 3 attempts in 12 "
      "secs): user=<alice>, method=plain, rip=192.0.2.1, lip=10.0.0.1, TLS, "
      "session=<AbCdEfGh12345678>";
  const Parsed p = run(line);
  ASSERT_EQ(p.parse_error, ingest::SyslogParseError::ok);
  ASSERT_EQ(p.result.outcome, NormalizeOutcome::event);
  EXPECT_EQ(p.result.source, EventSource::dovecot);
  const AuthEvent& e = p.event;
  EXPECT_TRUE(e.has_time);
  EXPECT_EQ(e.time, (days_from_civil(2026, 11, 28) * 86400 + 10 * 3600) * kMicrosPerSecond);
  EXPECT_EQ(e.host, "mx1");
  EXPECT_EQ(e.program, "dovecot");
  EXPECT_EQ(e.source, EventSource::dovecot);
  EXPECT_EQ(e.service, "imap");
  EXPECT_EQ(e.kind, EventKind::auth_failure);
  EXPECT_EQ(e.reason, "auth_failed");
  EXPECT_EQ(ip_of(e), "192.0.2.1");
  EXPECT_EQ(e.port, -1);
  EXPECT_TRUE(e.has_user);
  EXPECT_EQ(e.user, "alice");
  EXPECT_EQ(e.mechanism.view(), "PLAIN");  // upper-cased
  EXPECT_EQ(e.attempts, 3u);
  EXPECT_EQ(e.session.view(), "AbCdEfGh12345678");
}

TEST(DovecotNormalizer, ClientPortIsTakenFromRportWhenTheOperatorLogsIt) {
  const std::string line =
      "Nov 28 10:00:00 mx1 dovecot: pop3-login: Aborted login (auth failed, 1 attempts in 2 "
      "secs): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=10.0.0.1, rport=51234, lport=995, "
      "session=<Zx9Yw8Vu7Ts6Rq5P>";
  const Parsed p = run(line);
  ASSERT_EQ(p.result.outcome, NormalizeOutcome::event);
  EXPECT_EQ(p.event.port, 51234);
  EXPECT_EQ(p.event.service, "pop3");
}

TEST(DovecotNormalizer, Auth24PrefixFieldsAreExact) {
  const std::string line =
      "Nov 28 10:02:22 mx1 dovecot: auth-worker(pat,2001:DB8::43,sasl:cram-md5)<4321>"
      "<V29ya2VyMjQxMjM0>: request [3]: pam: pam_authenticate() failed: Authentication failure "
      "(password mismatch?)";
  const Parsed p = run(line);
  ASSERT_EQ(p.result.outcome, NormalizeOutcome::event);
  EXPECT_EQ(p.event.kind, EventKind::auth_failure);
  EXPECT_EQ(p.event.reason, "password_mismatch");
  EXPECT_EQ(ip_of(p.event), "2001:db8::43");
  EXPECT_EQ(p.event.user, "pat");
  EXPECT_EQ(p.event.mechanism.view(), "CRAM-MD5");
  EXPECT_EQ(p.event.session.view(), "V29ya2VyMjQxMjM0");  // the pid is not the session
  EXPECT_TRUE(p.event.service.empty());
}

TEST(DovecotNormalizer, OtherProgramsAreIgnoredWhateverTheirText) {
  for (const std::string& line : {
           std::string("Nov 28 10:00:00 mx1 postfix/smtpd[1]: imap-login: Disconnected (auth "
                       "failed, 1 attempts in 2 secs): user=<a>, rip=192.0.2.1"),
           std::string("Nov 28 10:00:00 mx1 sshd[1]: auth: passwd-file(a,192.0.2.1): unknown user"),
           std::string("Nov 28 10:00:00 mx1 dovecotx: imap-login: Login: user=<a>, rip=192.0.2.1"),
       }) {
    const Parsed p = run(line);
    EXPECT_EQ(p.result.outcome, NormalizeOutcome::ignored) << line;
  }
}

TEST(DovecotNormalizer, UnrecognizedIsReportedAsDovecot) {
  const std::string line = "Nov 28 10:00:00 mx1 dovecot: auth: Info: unknown user bob";
  const Parsed p = run(line);
  EXPECT_EQ(p.result.outcome, NormalizeOutcome::unrecognized);
  EXPECT_EQ(p.result.source, EventSource::dovecot);
}

// SyslogMessage fields built by hand, each from its own string (not one buffer): the
// normalizer must still read a log_path style line from TAG + MSG.
TEST(DovecotNormalizer, FieldsFromSeparateBuffersStillParse) {
  const std::string app = "imap-login";
  const std::string message =
      "Info: Disconnected (auth failed, 2 attempts in 3 secs): user=<carol>, method=PLAIN, "
      "rip=198.51.100.9, lip=10.0.0.1, session=<QmFzZTY0U2Vzc2lv>";
  ingest::SyslogMessage msg;
  msg.app_name = app;
  msg.message = message;
  AuthEvent e;
  const NormalizeResult r = normalize_dovecot(msg, e);
  ASSERT_EQ(r.outcome, NormalizeOutcome::event);
  EXPECT_EQ(ip_of(e), "198.51.100.9");
  EXPECT_EQ(e.service, "imap");
  EXPECT_EQ(e.attempts, 2u);
  EXPECT_EQ(e.program, "imap-login");
  EXPECT_FALSE(e.has_time);
}

TEST(DovecotNormalizer, EmptyAndTinyMessagesAreIgnored) {
  for (const char* text : {"", "x", "imap-login", "imap-login: ", "auth(", "auth-worker(",
                           "auth(a,1.2.3.4", "auth(a,1.2.3.4)", "auth(a,1.2.3.4)<", "pam_unix(",
                           "imap-login: Login", "imap-login: Login: ", "imap-login: x: rip="}) {
    ingest::SyslogMessage msg;
    msg.app_name = "dovecot";
    msg.message = text;
    AuthEvent e;
    EXPECT_NE(normalize_dovecot(msg, e).outcome, NormalizeOutcome::event) << text;
  }
}

// ---- the safety property over generated hostile user names ------------------------------

// A small deterministic generator (no <random>: the sequence must be the same everywhere).
struct Lcg {
  std::uint64_t state;
  std::uint32_t next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(state >> 33);
  }
};

// Pieces of Dovecot's own syntax, in every form the formats above use, with the decoy address.
const std::vector<std::string>& fragments() {
  static const std::vector<std::string> k = {
      ", rip=6.6.6.6", "rip=6.6.6.6", ">", "<", ", method=PLAIN", ", lip=10.0.0.1", ", TLS",
      ", secured", ", mpid=1", ", session=<AAAAAAAA", ", session=<AAAAAAAA>", "): ", ")", "(",
      ",6.6.6.6", ",6.6.6.6)", ",6.6.6.6): ", ",6.6.6.6,<AAAA>): ", ",6.6.6.6,sasl:plain",
      ")<AAAAAAAA>: ", ")<123><AAAAAAAA>: request [1]: ", "unknown user", "Password mismatch",
      "passwd-file: ", " rhost=6.6.6.6", "  user=", " ", ",", "x", "2001:db8:666::6",
      ", rip=2001:db8:666::6", ": user=<", " (auth failed, 9 attempts in 1 secs)", "Info: ",
      ",master", ",", "<0x0A>", "TLS: x", ", rport=1",
  };
  return k;
}

std::string hostile_user(Lcg& rng) {
  std::string user;
  const int pieces = 1 + static_cast<int>(rng.next() % 6);
  for (int i = 0; i < pieces; ++i) user += fragments()[rng.next() % fragments().size()];
  return user;
}

// Each template puts the user where Dovecot does; `real` is the client's address in the line
// (empty: the line carries none, so no event may come out with any address).
struct Template {
  std::string before;
  std::string after;
  std::string real;
};

const std::vector<Template>& templates() {
  static const std::vector<Template> k = {
      // 2.2 login line, with and without method=
      {"Nov 28 10:00:00 mx1 dovecot: imap-login: Disconnected (auth failed, 2 attempts in 3 "
       "secs): user=<",
       ">, method=PLAIN, rip=192.0.2.1, lip=10.0.0.1, TLS, session=<UmVhbFNlc3Npb24x>",
       "192.0.2.1"},
      {"Nov 28 10:00:00 mx1 dovecot: imap-login: Disconnected (tried to use disallowed "
       "plaintext auth): user=<",
       ">, rip=192.0.2.1, lip=10.0.0.1, session=<UmVhbFNlc3Npb24x>", "192.0.2.1"},
      // 2.4 login line
      {"Nov 28 10:00:00 imap-login: Info: Login aborted: Connection closed (auth failed, 1 "
       "attempts in 2 secs) (auth_failed): user=<",
       ">, method=PLAIN, rip=192.0.2.1, lip=10.0.0.1, TLS, session=<UmVhbFNlc3Npb24x>",
       "192.0.2.1"},
      // login lines of a client without an address (UNIX socket): nothing may come out
      {"Nov 28 10:00:00 mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 "
       "secs): user=<",
       ">, method=PLAIN, secured, session=<UmVhbFNlc3Npb24x>", ""},
      {"Nov 28 10:00:00 mx1 dovecot: imap-login: Disconnected (tried to use disallowed "
       "plaintext auth): user=<",
       ">, secured, session=<UmVhbFNlc3Npb24x>", ""},
      {"Nov 28 10:00:00 mx1 dovecot: imap-login: Disconnected (no auth attempts in 1 secs): "
       "user=<",
       ">, session=<UmVhbFNlc3Npb24x>", ""},
      // proxy line: the user twice before the elements
      {"Nov 28 10:00:00 mx1 dovecot: imap-login: proxy(",
       "): Login failed to 10.0.0.2:143: Authentication failed: user=<x>, method=PLAIN, "
       "rip=192.0.2.1, lip=10.0.0.1, session=<UmVhbFNlc3Npb24x>",
       "192.0.2.1"},
      // 2.2/2.3 auth prefixes
      {"Nov 28 10:00:00 mx1 dovecot: auth: passwd-file(", ",192.0.2.1): unknown user",
       "192.0.2.1"},
      {"Nov 28 10:00:00 mx1 dovecot: auth: passwd-file(",
       ",192.0.2.1,<UmVhbFNlc3Npb24x>): Password mismatch", "192.0.2.1"},
      {"Nov 28 10:00:00 mx1 dovecot: auth-worker(12): pam(",
       ",192.0.2.1): pam_authenticate() failed: Authentication failure (password mismatch?)",
       "192.0.2.1"},
      // 2.4 auth prefixes, syslog and log file
      {"Nov 28 10:00:00 mx1 dovecot: auth(",
       ",192.0.2.1,sasl:plain)<UmVhbFNlc3Npb24x>: passwd-file: unknown user", "192.0.2.1"},
      {"Nov 28 10:00:00 auth(", ",192.0.2.1,sasl:plain)<UmVhbFNlc3Npb24x>: Info: passwd-file: "
       "Password mismatch", "192.0.2.1"},
      {"Nov 28 10:00:00 mx1 dovecot: auth-worker(",
       ",192.0.2.1)<4321><UmVhbFNlc3Npb24x>: request [7]: pam: pam_authenticate() failed: "
       "Authentication failure (password mismatch?)",
       "192.0.2.1"},
      // auth_verbose_passwords=plain: the password (attacker text) after the message
      {"Nov 28 10:00:00 mx1 dovecot: auth: passwd-file(alice,192.0.2.1): Password mismatch "
       "(given password: ",
       ")", "192.0.2.1"},
      // pam_unix: the user on both sides of rhost=
      {"Nov 28 10:00:00 mx1 auth: pam_unix(dovecot:auth): authentication failure; logname= "
       "uid=0 euid=0 tty=dovecot ruser=",
       " rhost=192.0.2.1  user=x", "192.0.2.1"},
      {"Nov 28 10:00:00 mx1 auth: pam_unix(dovecot:auth): authentication failure; logname= "
       "uid=0 euid=0 tty=dovecot ruser=x rhost=192.0.2.1  user=",
       "", "192.0.2.1"},
  };
  return k;
}

TEST(DovecotNormalizerSafety, NoUserNameEverSuppliesTheAddress) {
  Lcg rng{20261128};
  int events = 0, checked = 0;
  for (int round = 0; round < 4000; ++round) {
    const std::string user = hostile_user(rng);
    for (const Template& t : templates()) {
      const std::string line = t.before + user + t.after;
      const Parsed p = run(line);
      ++checked;
      if (p.result.outcome != NormalizeOutcome::event) continue;
      ++events;
      ASSERT_FALSE(t.real.empty()) << "an address from a line that has none\n  line: " << line
                                   << "\n  ip:   " << ip_of(p.event);
      ASSERT_EQ(ip_of(p.event), t.real) << "  line: " << line;
    }
  }
  // The generator must not be so hostile that nothing parses: most lines stay attributable.
  EXPECT_GT(events, checked / 4);
}

// The same templates with ordinary user names: every line with an address yields an event
// carrying exactly that user (the safety rules do not cost legitimate lines).
TEST(DovecotNormalizerSafety, OrdinaryUserNamesAlwaysYieldTheEvent) {
  for (const std::string user : {"alice", "bob@example.com", "first.last+tag@example.org",
                                  "user_name-1", "UPPER", "a(b)c", "x>y", "with space"}) {
    for (const Template& t : templates()) {
      if (t.real.empty()) continue;
      // pam_unix's ruser= cannot hold a space without ambiguity (see the injection file).
      if (user == "with space" && t.before.find("pam_unix") != std::string::npos) continue;
      const std::string line = t.before + user + t.after;
      const Parsed p = run(line);
      ASSERT_EQ(p.result.outcome, NormalizeOutcome::event) << line;
      EXPECT_EQ(ip_of(p.event), t.real) << line;
    }
  }
}

TEST(DovecotNormalizerSafety, AmbiguousAuthPrefixIsReportedNotGuessed) {
  const std::string line =
      "Nov 28 10:00:00 mx1 dovecot: auth: passwd-file(x,6.6.6.6): unknown user,192.0.2.12): "
      "Password mismatch";
  const Parsed p = run(line);
  EXPECT_EQ(p.result.outcome, NormalizeOutcome::unrecognized);
}

// Linear time: a line made of one repeated Dovecot token must not make the parser quadratic.
// (A functional check with a generous bound; speed itself is measured by bench/.)
TEST(DovecotNormalizerSafety, LongHostileLinesAreHandled) {
  for (const std::string& unit : {std::string(")"), std::string(",1.2.3.4)"), std::string(", rip="),
                                 std::string(")<AAAA>: "), std::string(" rhost=1.2.3.4 ")}) {
    std::string user;
    while (user.size() < 60000) user += unit;
    for (const Template& t : templates()) {
      const std::string line = t.before + user + t.after;
      const Parsed p = run(line);
      if (p.result.outcome == NormalizeOutcome::event) {
        EXPECT_EQ(ip_of(p.event), t.real.empty() ? std::string("none") : t.real);
      }
    }
  }
}

}  // namespace
}  // namespace authwall::normalize
