// Unit tests for normalize_postfix: program names, every template's fields, and the safety
// rules (the client comes only from the template position). The golden files
// tests/golden/postfix-*.log cover the same ground line by line through parse_syslog; these
// tests build SyslogMessage by hand so they also reach bytes a log file cannot hold (NUL, LF).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/syslog_message.h"
#include "ingest/syslog_parser.h"
#include "normalize/auth_event.h"
#include "normalize/normalizer.h"

namespace authwall::normalize {
namespace {

using namespace std::string_view_literals;

struct Outcome {
  NormalizeOutcome outcome = NormalizeOutcome::ignored;
  AuthEvent event;
};

Outcome run(std::string_view app, std::string_view procid, std::string_view message,
            std::string_view host = "mx1") {
  ingest::SyslogMessage msg;
  msg.hostname = host;
  msg.app_name = app;
  msg.procid = procid;
  msg.message = message;
  msg.has_time = true;
  msg.time = 1'700'000'000LL * kMicrosPerSecond;
  Outcome o;
  const NormalizeResult r = normalize_postfix(msg, o.event);
  o.outcome = r.outcome;
  EXPECT_EQ(r.source, EventSource::postfix);
  return o;
}

Outcome smtpd(std::string_view message) { return run("postfix/smtpd", "100", message); }

std::string ip(const AuthEvent& e) { return e.ip.to_string(); }

constexpr std::string_view kSaslFailure =
    "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: (reason unavailable), "
    "sasl_username=alice";

// ---- program names ----------------------------------------------------------------------------

TEST(PostfixProgramName, ServiceComesFromTheMasterCfSyslogName) {
  struct Case {
    std::string_view app, procid, service;
  } cases[] = {
      {"postfix/smtpd", "1", "smtp"},
      {"postfix/postscreen", "1", "smtp"},
      {"postfix/submission/smtpd", "1", "submission"},
      {"postfix/smtps/smtpd", "1", "smtps"},
      {"postfix/submissions-proxyprotocol/smtpd", "1", "submissions-proxyprotocol"},
      {"postfix-out/smtpd", "1", "smtp"},
      {"postfix-out/submission/smtpd", "1", "submission"},
      // rsyslog's 32-character cut: no pid, the cut text is the service
      {"postfix/submissions-proxyprotoco", "", "submissions-proxyprotoco"},
      {"postfix/submission-longname/smtp", "", "submission-longname"},
      // APP-NAME alone: the service is unknown
      {"postfix", "1", ""},
      {"postfix-out", "1", ""},
  };
  for (const auto& c : cases) {
    const bool postscreen = c.app == "postfix/postscreen";
    const Outcome o = run(c.app, c.procid,
                          postscreen ? "PREGREET 1 after 0 from [192.0.2.1]:1: x"sv : kSaslFailure);
    ASSERT_EQ(o.outcome, NormalizeOutcome::event) << c.app;
    EXPECT_EQ(o.event.service, c.service) << c.app;
    EXPECT_EQ(o.event.program, c.app);
    EXPECT_EQ(o.event.source, EventSource::postfix);
  }
}

TEST(PostfixProgramName, OtherProgramsAndOtherPostfixDaemonsAreIgnored) {
  for (std::string_view app : {"postfi"sv, "postfixadmin"sv, "xpostfix/smtpd"sv, "sendmail"sv,
                               "dovecot"sv, ""sv, "postfix/qmgr"sv, "postfix/cleanup"sv,
                               "postfix/smtp"sv, "postfix/anvil"sv, "postfix/submission/smtp"sv,
                               "postfix/dnsblog"sv}) {
    EXPECT_EQ(run(app, "1", kSaslFailure).outcome, NormalizeOutcome::ignored) << app;
  }
}

TEST(PostfixProgramName, A32CharacterTagWithAPidIsNotACutTag) {
  // Exactly 32 characters but with its pid: a complete name, and "smtpx" is no daemon of ours.
  const std::string_view app = "postfix/submission-abcdefg/smtpx";
  ASSERT_EQ(app.size(), 32u);
  EXPECT_EQ(run(app, "7", kSaslFailure).outcome, NormalizeOutcome::ignored);
  EXPECT_EQ(run(app, "", kSaslFailure).outcome, NormalizeOutcome::event);
}

// ---- SASL ---------------------------------------------------------------------------------------

TEST(PostfixSasl, Postfix3FailureCarriesUserMechanismAndSession) {
  const Outcome o = run("postfix/submission/smtpd", "1234", kSaslFailure, "mx1");
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  const AuthEvent& e = o.event;
  EXPECT_EQ(e.kind, EventKind::auth_failure);
  EXPECT_EQ(e.reason, "sasl_failed");
  EXPECT_EQ(ip(e), "192.0.2.1");
  EXPECT_EQ(e.port, -1);
  EXPECT_TRUE(e.has_user);
  EXPECT_EQ(e.user, "alice");
  EXPECT_EQ(e.mechanism.view(), "LOGIN");
  EXPECT_EQ(e.attempts, 1u);
  EXPECT_EQ(e.session.view(), "mx1/1234/192.0.2.1");
  EXPECT_TRUE(e.has_time);
  EXPECT_EQ(e.time, 1'700'000'000LL * kMicrosPerSecond);
  EXPECT_EQ(e.host, "mx1");
}

TEST(PostfixSasl, EveryVersionsFormIsAFailure) {
  for (std::string_view line : {
           "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: authentication failure"sv,
           "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"sv,
           "warning: unknown[192.0.2.1]: SASL PLAIN authentication failed: "sv,
           "warning: unknown[192.0.2.1]: SASL PLAIN authentication failed:"sv,
           "warning: unknown[192.0.2.1]: SASL PLAIN authentication failed"sv,
           "warning: unknown[192.0.2.1]: SASL PLAIN authentication failed: (reason unavailable), sasl_username=(unavailable)"sv,
       }) {
    const Outcome o = smtpd(line);
    ASSERT_EQ(o.outcome, NormalizeOutcome::event) << line;
    EXPECT_EQ(o.event.reason, "sasl_failed") << line;
    EXPECT_EQ(ip(o.event), "192.0.2.1") << line;
    EXPECT_FALSE(o.event.has_user) << line;
  }
}

TEST(PostfixSasl, MechanismIsUpperCasedAndBounded) {
  Outcome o = smtpd("warning: unknown[192.0.2.1]: SASL cram-md5 authentication failed: x");
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_EQ(o.event.mechanism.view(), "CRAM-MD5");
  const std::string long_mech(100, 'm');
  o = smtpd("warning: unknown[192.0.2.1]: SASL " + long_mech + " authentication failed: x");
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_EQ(o.event.mechanism.view(), std::string(32, 'M'));
  // Postfix logs at most 100 characters of the mechanism: more is not Postfix's line.
  o = smtpd("warning: unknown[192.0.2.1]: SASL " + long_mech + "m authentication failed: x");
  EXPECT_EQ(o.outcome, NormalizeOutcome::unrecognized);
}

TEST(PostfixSasl, PortsAndAddressesAreCanonical) {
  Outcome o = smtpd(
      "warning: unknown[192.0.2.1]:55440: SASL LOGIN authentication failed: (reason unavailable)");
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_EQ(o.event.port, 55440);
  o = smtpd("warning: h.example[2001:DB8:0::1]:1: SASL LOGIN authentication failed: x");
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_EQ(ip(o.event), "2001:db8::1");
  EXPECT_EQ(o.event.port, 1);
  EXPECT_EQ(o.event.session.view(), "mx1/100/2001:db8::1");
  o = smtpd("warning: unknown[::ffff:192.0.2.9]: SASL LOGIN authentication failed: x");
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_TRUE(o.event.ip.is_v4);
  EXPECT_EQ(ip(o.event), "192.0.2.9");
  // "IPv6:" marks address literals (HELO, headers), never the client position.
  EXPECT_EQ(smtpd("warning: unknown[IPv6:2001:db8::2]: SASL LOGIN authentication failed: x")
                .outcome,
            NormalizeOutcome::unrecognized);
  EXPECT_EQ(smtpd("warning: unknown[192.0.2.1]:65536: SASL LOGIN authentication failed: x")
                .outcome,
            NormalizeOutcome::unrecognized);
  EXPECT_EQ(smtpd("warning: unknown[192.0.2.1]:123456: SASL LOGIN authentication failed: x")
                .outcome,
            NormalizeOutcome::unrecognized);
}

TEST(PostfixSasl, OutagesAreNotAttacks) {
  for (std::string_view reason : {"Connection lost to authentication server"sv,
                                  "Can't connect to authentication server"sv,
                                  "Temporary authentication failure"sv, "temporary failure"sv}) {
    const std::string line =
        "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: " + std::string(reason);
    EXPECT_EQ(smtpd(line).outcome, NormalizeOutcome::ignored) << line;
    EXPECT_EQ(smtpd(line + ", sasl_username=alice").outcome, NormalizeOutcome::ignored) << line;
  }
  // ... but a client cannot declare its own failure an outage through its user name.
  const Outcome o = smtpd(
      "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: (reason unavailable), "
      "sasl_username=Connection lost to authentication server");
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_EQ(o.event.user, "Connection lost to authentication server");
}

TEST(PostfixSasl, AbortIsProtocolAbuse) {
  const Outcome o = smtpd("warning: unknown[192.0.2.1]: SASL LOGIN authentication aborted");
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_EQ(o.event.kind, EventKind::protocol_abuse);
  EXPECT_EQ(o.event.reason, "sasl_aborted");
  EXPECT_EQ(o.event.mechanism.view(), "LOGIN");
}

TEST(PostfixSasl, SuccessfulLogin) {
  Outcome o = run("postfix/submission/smtpd", "9",
                  "4C1C3A1F2B: client=laptop[192.0.2.40]:40001, sasl_method=plain, "
                  "sasl_username=alice, sasl_sender=alice@example.org");
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_EQ(o.event.kind, EventKind::auth_success);
  EXPECT_EQ(o.event.reason, "sasl_login");
  EXPECT_EQ(o.event.user, "alice");
  EXPECT_EQ(o.event.mechanism.view(), "PLAIN");
  EXPECT_EQ(o.event.port, 40001);
  EXPECT_EQ(smtpd("4C1C3A1F2B: client=mail.example.com[192.0.2.40]").outcome,
            NormalizeOutcome::ignored);
}

// ---- session summaries --------------------------------------------------------------------------

TEST(PostfixDisconnect, AuthFailuresAreCountedFromTheStatistics) {
  struct Case {
    std::string_view stats;
    NormalizeOutcome outcome;
    EventKind kind;
    std::uint32_t attempts;
  } cases[] = {
      {" ehlo=1 auth=0/1 quit=1 commands=2/3", NormalizeOutcome::event, EventKind::auth_failure, 1},
      {" ehlo=1 auth=0/5 commands=1/6", NormalizeOutcome::event, EventKind::auth_failure, 5},
      {" ehlo=1 auth=2/5 mail=1 commands=4/7", NormalizeOutcome::event, EventKind::auth_failure, 3},
      {" ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6", NormalizeOutcome::ignored, {}, 0},
      {" ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4", NormalizeOutcome::ignored, {}, 0},
      {" ehlo=1 quit=1 commands=2", NormalizeOutcome::event, EventKind::no_auth_disconnect, 1},
      {" commands=0", NormalizeOutcome::event, EventKind::no_auth_disconnect, 1},
      {" unknown=0/1 commands=0/1", NormalizeOutcome::event, EventKind::no_auth_disconnect, 1},
      {"", NormalizeOutcome::ignored, {}, 0},
      {" ehlo=1 auth=x commands=1", NormalizeOutcome::unrecognized, {}, 0},
      {" ehlo=1  commands=1", NormalizeOutcome::unrecognized, {}, 0},
      {" EHLO=1 commands=1", NormalizeOutcome::unrecognized, {}, 0},
      // a trailing space (some relays append one) changes nothing
      {" ehlo=1 commands=1 ", NormalizeOutcome::event, EventKind::no_auth_disconnect, 1},
  };
  for (const auto& c : cases) {
    const std::string line = "disconnect from unknown[192.0.2.50]" + std::string(c.stats);
    const Outcome o = smtpd(line);
    ASSERT_EQ(o.outcome, c.outcome) << line;
    if (c.outcome != NormalizeOutcome::event) continue;
    EXPECT_EQ(o.event.kind, c.kind) << line;
    EXPECT_EQ(o.event.attempts, c.attempts) << line;
    EXPECT_EQ(o.event.reason, c.kind == EventKind::auth_failure ? "disconnect_auth_failed"sv
                                                                : "no_auth"sv);
  }
}

TEST(PostfixDisconnect, SummaryAndWarningShareTheSession) {
  const Outcome warning = run("postfix/smtpd", "4242", kSaslFailure, "mail.example.org");
  const Outcome summary = run("postfix/smtpd", "4242",
                              "disconnect from unknown[192.0.2.1]:2000 ehlo=1 auth=0/1 commands=1/2",
                              "mail.example.org");
  ASSERT_EQ(warning.outcome, NormalizeOutcome::event);
  ASSERT_EQ(summary.outcome, NormalizeOutcome::event);
  EXPECT_EQ(warning.event.session.view(), "mail.example.org/4242/192.0.2.1");
  EXPECT_EQ(warning.event.session.view(), summary.event.session.view());
}

TEST(PostfixSession, NullWithoutPidAndBoundedWithLongHostnames) {
  EXPECT_TRUE(run("postfix/submissions-proxyprotoco", "", kSaslFailure).event.session.empty());
  const std::string host(200, 'h');
  const Outcome o = run("postfix/smtpd", "1", kSaslFailure, host);
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_EQ(o.event.session.view(), std::string(96, 'h'));
}

// ---- smtpd session and policy lines ---------------------------------------------------------------

TEST(PostfixSmtpd, ReasonCodes) {
  struct Case {
    std::string_view line;
    EventKind kind;
    std::string_view reason;
  } cases[] = {
      {"lost connection after AUTH from unknown[192.0.2.1]", EventKind::protocol_abuse,
       "lost_connection_after_auth"},
      {"timeout after AUTH from unknown[192.0.2.1]", EventKind::protocol_abuse,
       "timeout_after_auth"},
      {"too many errors after RCPT from unknown[192.0.2.1]", EventKind::protocol_abuse,
       "too_many_errors"},
      {"too many errors after DATA (12 bytes) from unknown[192.0.2.1]", EventKind::protocol_abuse,
       "too_many_errors"},
      {"improper command pipelining after CONNECT from unknown[192.0.2.1]: GET /",
       EventKind::protocol_abuse, "pipelining"},
      {"warning: non-SMTP command from unknown[192.0.2.1]: GET / HTTP/1.1",
       EventKind::protocol_abuse, "non_smtp_command"},
      {"warning: Illegal address syntax from unknown[192.0.2.1] in MAIL command: <@>",
       EventKind::protocol_abuse, "illegal_address_syntax"},
      {"warning: Connection rate limit exceeded: 31 from unknown[192.0.2.1] for service smtp",
       EventKind::protocol_abuse, "rate_limit"},
      {"warning: AUTH command rate limit exceeded: 5 from unknown[192.0.2.1] for service smtp",
       EventKind::protocol_abuse, "rate_limit"},
      {"NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <v@x>: Relay access denied; "
       "from=<a@b> to=<v@x> proto=ESMTP helo=<h>",
       EventKind::rejected, "relay_denied"},
      {"NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 550 5.1.1 <v@x>: Recipient address "
       "rejected: User unknown in local recipient table; from=<a@b> to=<v@x> proto=ESMTP helo=<h>",
       EventKind::rejected, "unknown_recipient"},
      {"NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 Service unavailable; Client "
       "host [192.0.2.1] blocked using bl.example; from=<a@b> to=<v@x> proto=ESMTP helo=<h>",
       EventKind::rejected, "dnsbl"},
      {"NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 450 4.7.1 <v@x>: Recipient address "
       "rejected: Greylisted; from=<a@b> to=<v@x> proto=ESMTP helo=<h>",
       EventKind::rejected, "recipient_rejected"},
      {"NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 451 4.3.0 Temporary lookup failure; "
       "from=<a@b> to=<v@x> proto=ESMTP helo=<h>",
       EventKind::rejected, "reject_temporary"},
      {"NOQUEUE: reject: DATA from unknown[192.0.2.1]: 554 5.5.1 Error: no valid recipients; "
       "from=<a@b> to=<v@x> proto=ESMTP helo=<h>",
       EventKind::rejected, "reject"},
      {"NOQUEUE: milter-reject: RCPT from unknown[192.0.2.1]: 550 5.7.1 Command rejected; "
       "from=<a@b> to=<v@x> proto=ESMTP helo=<h>",
       EventKind::rejected, "milter_reject"},
  };
  for (const auto& c : cases) {
    const Outcome o = smtpd(c.line);
    ASSERT_EQ(o.outcome, NormalizeOutcome::event) << c.line;
    EXPECT_EQ(o.event.kind, c.kind) << c.line;
    EXPECT_EQ(o.event.reason, c.reason) << c.line;
    EXPECT_EQ(ip(o.event), "192.0.2.1") << c.line;
    EXPECT_FALSE(o.event.has_user) << c.line;
    EXPECT_TRUE(o.event.mechanism.empty()) << c.line;
  }
}

TEST(PostfixSmtpd, OrdinaryTrafficIsIgnored) {
  for (std::string_view line : {
           "connect from mail.example.com[192.0.2.1]"sv,
           "disconnect from mail.example.com[192.0.2.1] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7"sv,
           "Anonymous TLS connection established from mail.example.com[192.0.2.1]: TLSv1.3"sv,
           "4C1C3A1F2B: client=mail.example.com[192.0.2.1]"sv,
           "lost connection after CONNECT from unknown[192.0.2.1]"sv,
           "lost connection after DATA (0 bytes) from unknown[192.0.2.1]"sv,
           "NOQUEUE: reject_warning: RCPT from unknown[192.0.2.1]: 450 4.7.1 x; from=<a@b>"sv,
           "warning: hostname x.example does not resolve to address 192.0.2.1"sv,
           "warning: SASL authentication failure: Password verification failed"sv,
           "warning: unknown[unknown]: SASL LOGIN authentication failed: x"sv,
           ""sv,
           "w"sv,
       }) {
    EXPECT_EQ(smtpd(line).outcome, NormalizeOutcome::ignored) << line;
  }
}

TEST(PostfixSmtpd, FailureLookingLinesWithoutATemplateAreUnrecognized) {
  for (std::string_view line : {
           "warning: unknown[192.0.2.1]: SASL LOGIN authentication exploded"sv,
           "warning: unknown[192.0.2.1]: something new"sv,
           "NOQUEUE: reject: rcpt from unknown[192.0.2.1]: 554 x"sv,
           "NOQUEUE: reject: RCPT from unknown[192.0.2.999]: 554 x"sv,
           "a new reject line from unknown[192.0.2.1]"sv,
       }) {
    EXPECT_EQ(smtpd(line).outcome, NormalizeOutcome::unrecognized) << line;
  }
}

// ---- postscreen -------------------------------------------------------------------------------------

TEST(PostfixPostscreen, ReasonCodes) {
  struct Case {
    std::string_view line;
    EventKind kind;
    std::string_view reason;
  } cases[] = {
      {"PREGREET 11 after 0.1 from [192.0.2.1]:5000: EHLO x\\r\\n", EventKind::protocol_abuse,
       "pregreet"},
      {"HANGUP after 0.5 from [192.0.2.1]:5000 in tests before SMTP handshake",
       EventKind::protocol_abuse, "hangup"},
      {"COMMAND COUNT LIMIT from [192.0.2.1]:5000", EventKind::protocol_abuse,
       "command_count_limit"},
      {"COMMAND TIME LIMIT from [192.0.2.1]:5000 after RCPT", EventKind::protocol_abuse,
       "command_time_limit"},
      {"COMMAND LENGTH LIMIT from [192.0.2.1]:5000", EventKind::protocol_abuse,
       "command_length_limit"},
      {"COMMAND PIPELINING from [192.0.2.1]:5000 after EHLO: QUIT\\r\\n",
       EventKind::protocol_abuse, "pipelining"},
      {"NON-SMTP COMMAND from [192.0.2.1]:5000 after CONNECT: GET / HTTP/1.1",
       EventKind::protocol_abuse, "non_smtp_command"},
      {"BARE NEWLINE from [192.0.2.1]:5000", EventKind::protocol_abuse, "bare_newline"},
      {"DNSBL rank 4 for [192.0.2.1]:5000", EventKind::rejected, "dnsbl"},
      {"DENYLISTED [192.0.2.1]:5000", EventKind::rejected, "denylisted"},
      {"BLACKLISTED [192.0.2.1]:5000", EventKind::rejected, "denylisted"},
      {"NOQUEUE: reject: CONNECT from [192.0.2.1]:5000: too many connections",
       EventKind::protocol_abuse, "rate_limit"},
      {"NOQUEUE: reject: RCPT from [192.0.2.1]:5000: 550 5.7.1 Service unavailable; client "
       "[192.0.2.1] blocked using bl.example; from=<a@b>, to=<c@d>, proto=ESMTP, helo=<h>",
       EventKind::rejected, "dnsbl"},
  };
  for (const auto& c : cases) {
    for (std::string_view app : {"postfix/postscreen"sv, "postfix"sv}) {
      const Outcome o = run(app, "77", c.line);
      ASSERT_EQ(o.outcome, NormalizeOutcome::event) << app << ": " << c.line;
      EXPECT_EQ(o.event.kind, c.kind) << c.line;
      EXPECT_EQ(o.event.reason, c.reason) << c.line;
      EXPECT_EQ(ip(o.event), "192.0.2.1") << c.line;
      EXPECT_EQ(o.event.port, 5000) << c.line;
    }
  }
}

TEST(PostfixPostscreen, OrdinaryLinesAreIgnored) {
  for (std::string_view line : {
           "CONNECT from [192.0.2.1]:5000 to [198.51.100.1]:25"sv,
           "PASS NEW [192.0.2.1]:5000"sv,
           "PASS OLD [192.0.2.1]:5000"sv,
           "WHITELISTED [192.0.2.1]:5000"sv,
           "DISCONNECT [192.0.2.1]:5000"sv,
           "NOQUEUE: reject: CONNECT from [192.0.2.1]:5000: all server ports busy"sv,
       }) {
    EXPECT_EQ(run("postfix/postscreen", "1", line).outcome, NormalizeOutcome::ignored) << line;
  }
  // postscreen writes no smtpd lines: an smtpd template under postscreen's name is not matched.
  EXPECT_EQ(run("postfix/postscreen", "1", "lost connection after AUTH from unknown[192.0.2.1]")
                .outcome,
            NormalizeOutcome::ignored);
}

// ---- safety ---------------------------------------------------------------------------------------

TEST(PostfixSafety, AttackerTextNeverYieldsTheAddress) {
  // Each line's real client is 192.0.2.1; 6.6.6.6 sits where the attacker writes.
  for (std::string_view line : {
           "NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <v@x>: Relay access denied; from=<a@[6.6.6.6]> to=<v@[6.6.6.6]> proto=ESMTP helo=<[6.6.6.6]>"sv,
           "NOQUEUE: reject: EHLO from unknown[192.0.2.1]: 504 5.5.2 <from unknown[6.6.6.6]: >: Helo command rejected: x; proto=ESMTP helo=<from unknown[6.6.6.6]: >"sv,
           "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=a[6.6.6.6]"sv,
           "warning: unknown[192.0.2.1]: SASL x[6.6.6.6] authentication failed: x"sv,
           "improper command pipelining after CONNECT from unknown[192.0.2.1]: warning: unknown[6.6.6.6]: SASL LOGIN authentication failed"sv,
           "warning: non-SMTP command from unknown[192.0.2.1]: from unknown[6.6.6.6]"sv,
           "4C1C3A1F2B: client=unknown[192.0.2.1], sasl_method=PLAIN, sasl_username=u, client=unknown[6.6.6.6]"sv,
       }) {
    const Outcome o = smtpd(line);
    ASSERT_EQ(o.outcome, NormalizeOutcome::event) << line;
    EXPECT_EQ(ip(o.event), "192.0.2.1") << line;
  }
}

TEST(PostfixSafety, BytesALogFileCannotHoldStayInsideTheirField) {
  // NUL, LF and CR inside the user name or the command data: still the real client, and the
  // user name is kept exactly as logged.
  const std::string user = std::string("a\0b\nwarning: unknown[6.6.6.6]: SASL LOGIN", 40) + "\r";
  const std::string line =
      "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x, sasl_username=" + user;
  Outcome o = smtpd(line);
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_EQ(ip(o.event), "192.0.2.1");
  EXPECT_EQ(o.event.user, user);
  o = smtpd(std::string("improper command pipelining after EHLO from unknown[192.0.2.1]: \0\n"
                        "lost connection after AUTH from unknown[6.6.6.6]",
                        110));
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_EQ(ip(o.event), "192.0.2.1");
}

TEST(PostfixSafety, ClientNamesPostfixWouldNotPrintRejectTheLine) {
  for (std::string_view client : {
           "evil]:[6.6.6.6]"sv, "evil host[6.6.6.6]"sv, "unknown[6.6.6.6][192.0.2.1]"sv,
           "unknown[[6.6.6.6]]"sv, "unknown[6.6.6.6 192.0.2.1]"sv, "un\0known[6.6.6.6]"sv,
           "a\nb[6.6.6.6]"sv, "unknown[6.6.6.6]x"sv, "unknown[6.6.6.6]:"sv,
           "unknown[6.6.6.6"sv, "unknown6.6.6.6]"sv, "unknown[]"sv, "[6.6.6.6%eth0]"sv,
           "unknown[1.2.3.4.5]"sv,
       }) {
    const std::string line =
        "warning: " + std::string(client) + ": SASL LOGIN authentication failed: x";
    const Outcome o = smtpd(line);
    EXPECT_NE(o.outcome, NormalizeOutcome::event) << line;
  }
  const std::string long_name(300, 'a');
  EXPECT_NE(smtpd("warning: " + long_name + "[6.6.6.6]: SASL LOGIN authentication failed: x")
                .outcome,
            NormalizeOutcome::event);
}

TEST(PostfixSafety, InsertedFakeClientsNeverWinAnywhereAfterTheTemplatePosition) {
  // Property test: put a fake client text at every position after the real client in each
  // template; the event (if any) is always the real client.
  const std::string_view templates[] = {
      "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=alice",
      "disconnect from unknown[192.0.2.1] ehlo=1 auth=0/1 quit=1 commands=2/3",
      "NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <v@x>: Relay access denied; from=<a@b> to=<v@x> proto=ESMTP helo=<h>",
      "lost connection after AUTH from unknown[192.0.2.1]",
      "PREGREET 11 after 0.1 from [192.0.2.1]:5000: EHLO x",
      "4C1C3A1F2B: client=unknown[192.0.2.1], sasl_method=PLAIN, sasl_username=u",
  };
  const std::string_view fakes[] = {"unknown[6.6.6.6]", "[6.6.6.6]:25", " from x[6.6.6.6]: ",
                                    "]: SASL", "[", "]", ":", "\n", std::string_view("\0", 1)};
  for (std::string_view t : templates) {
    const std::size_t client_end = t.find(']') + 1;
    for (std::size_t pos = client_end; pos <= t.size(); ++pos) {
      for (std::string_view fake : fakes) {
        std::string line(t);
        line.insert(pos, fake);
        for (std::string_view app : {"postfix/smtpd"sv, "postfix/postscreen"sv, "postfix"sv}) {
          const Outcome o = run(app, "1", line);
          if (o.outcome == NormalizeOutcome::event) {
            EXPECT_EQ(ip(o.event), "192.0.2.1") << app << ": " << line;
          }
        }
      }
    }
  }
}

TEST(PostfixSafety, RandomBytesNeverCrashAndNeverInventAddresses) {
  // Random mutations of real lines: whatever comes out names an address that is literally in
  // the line between brackets.
  std::mt19937 rng(12345);
  const std::string_view seeds[] = {
      kSaslFailure,
      "disconnect from unknown[192.0.2.1]:40 ehlo=1 auth=0/1 commands=1/2",
      "NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <v@x>: Relay access denied; from=<a@b> to=<v@x> proto=ESMTP helo=<h>",
      "HANGUP after 0.5 from [2001:db8::1]:5000 in tests before SMTP handshake",
  };
  const char alphabet[] = "[]:, .0123456789abcdef/=<>\n\0";
  for (int i = 0; i < 20000; ++i) {
    std::string line(seeds[rng() % std::size(seeds)]);
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !line.empty(); ++k) {
      const std::size_t pos = rng() % line.size();
      const char ch = alphabet[rng() % (sizeof alphabet - 1)];
      switch (rng() % 3) {
        case 0: line[pos] = ch; break;
        case 1: line.insert(pos, 1, ch); break;
        default: line.erase(pos, 1); break;
      }
    }
    const Outcome o = run(rng() % 2 ? "postfix/smtpd" : "postfix", "1", line);
    if (o.outcome != NormalizeOutcome::event) continue;
    // Some bracket of the line holds exactly this address (possibly spelled differently).
    bool found = false;
    for (std::size_t open = line.find('['); open != std::string::npos && !found;
         open = line.find('[', open + 1)) {
      const std::size_t close = line.find(']', open);
      if (close == std::string::npos) break;
      const std::string inside = line.substr(open + 1, close - open - 1);
      IpAddress candidate;
      found = IpAddress::parse(inside, candidate) && candidate == o.event.ip;
    }
    EXPECT_TRUE(found) << ip(o.event) << " from " << line;
  }
}

TEST(PostfixSafety, HugeAdversarialLinesAreHandled) {
  // Long runs of template fragments: each scan is bounded or linear; this must simply finish.
  std::string line = "warning: ";
  for (int i = 0; i < 4000; ++i) line += "unknown[";
  EXPECT_NE(smtpd(line).outcome, NormalizeOutcome::event);
  line = "disconnect from unknown[192.0.2.1]";
  for (int i = 0; i < 8000; ++i) line += " ehlo=1";
  const Outcome o = smtpd(line);
  ASSERT_EQ(o.outcome, NormalizeOutcome::event);
  EXPECT_EQ(o.event.kind, EventKind::no_auth_disconnect);
  line = "NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 ";
  for (int i = 0; i < 8000; ++i) line += ">: ; from=<";
  EXPECT_EQ(smtpd(line).outcome, NormalizeOutcome::event);
}

// ---- through the syslog parser ------------------------------------------------------------------

TEST(PostfixWithSyslogParser, RsyslogCutTagArrivesWithoutPid) {
  ingest::SyslogMessage msg;
  const UnixMicros now = (days_from_civil(2026, 11, 28) * 86400 + 12 * 3600) * kMicrosPerSecond;
  ASSERT_EQ(ingest::parse_syslog("<20>Nov 28 10:00:00 mx1 postfix/submissions-proxyprotoco "
                                 "warning: unknown[192.0.2.61]: SASL LOGIN authentication "
                                 "failed: (reason unavailable), sasl_username=alice",
                                 now, msg),
            ingest::SyslogParseError::ok);
  AuthEvent e;
  ASSERT_EQ(normalize_postfix(msg, e).outcome, NormalizeOutcome::event);
  EXPECT_EQ(e.service, "submissions-proxyprotoco");
  EXPECT_EQ(e.user, "alice");
  EXPECT_TRUE(e.session.empty());
  EXPECT_EQ(e.ip.to_string(), "192.0.2.61");
}

TEST(PostfixWithSyslogParser, Rfc5424AppNamePostfix) {
  ingest::SyslogMessage msg;
  ASSERT_EQ(ingest::parse_syslog("<22>1 2026-11-28T10:03:04Z mx1 postfix 5004 - - warning: "
                                 "unknown[192.0.2.64]: SASL PLAIN authentication failed: "
                                 "(reason unavailable), sasl_username=dave",
                                 0, msg),
            ingest::SyslogParseError::ok);
  AuthEvent e;
  ASSERT_EQ(normalize_postfix(msg, e).outcome, NormalizeOutcome::event);
  EXPECT_TRUE(e.service.empty());
  EXPECT_EQ(e.session.view(), "mx1/5004/192.0.2.64");
  EXPECT_EQ(e.program, "postfix");
}

}  // namespace
}  // namespace authwall::normalize
