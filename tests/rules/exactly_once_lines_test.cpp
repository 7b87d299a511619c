// The five exactly-once scenarios of issue 4 (and a few more) as the real log lines Postfix 3.7
// and Dovecot 2.2-2.4 write, through the real syslog parser and normalizers into the rules
// engine, each line evaluated at its own timestamp (as `authwall check -c` does).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ingest/syslog_parser.h"
#include "normalize/normalizer.h"
#include "rules/attempt_deduplicator.h"
#include "rules/rule_config.h"
#include "rules/rule_engine.h"

using namespace authwall;

namespace {

constexpr UnixMicros kNow = 1795860000LL * kMicrosPerSecond;  // 2026-11-28T10:00:00Z

struct Scenario {
  const char* name;
  std::vector<const char*> lines;
  std::uint32_t attempts;  // failed attempts the lines describe
};

const Scenario kScenarios[] = {
    {"1: Dovecot serves Postfix SASL: auth line, SASL warning, disconnect summary",
     {"Nov 28 10:00:00 mx1 dovecot: auth: passwd-file(alice,192.0.2.60): Password mismatch",
      "Nov 28 10:00:02 mx1 postfix/submission/smtpd[4242]: warning: unknown[192.0.2.60]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=alice",
      "Nov 28 10:00:02 mx1 postfix/submission/smtpd[4242]: disconnect from unknown[192.0.2.60] ehlo=1 "
      "auth=0/1 quit=1 commands=2/3"},
     1},
    {"2: three IMAP failures in one connection, then the login process summary",
     {"Nov 28 10:00:00 mx1 dovecot: auth: passwd-file(alice,192.0.2.61,<kJ8Hq2a0xp/AAAAAAAAB>): Password mismatch",
      "Nov 28 10:00:02 mx1 dovecot: auth: passwd-file(alice,192.0.2.61,<kJ8Hq2a0xp/AAAAAAAAB>): Password mismatch",
      "Nov 28 10:00:04 mx1 dovecot: auth: passwd-file(root,192.0.2.61,<kJ8Hq2a0xp/AAAAAAAAB>): unknown user",
      "Nov 28 10:00:06 mx1 dovecot: imap-login: Disconnected (auth failed, 3 attempts in 6 secs): "
      "user=<root>, method=PLAIN, rip=192.0.2.61, lip=10.0.0.1, TLS, session=<kJ8Hq2a0xp/AAAAAAAAB>"},
     3},
    {"3: Postfix session with two SASL failures, then auth=0/2",
     {"Nov 28 10:00:00 mx1 postfix/smtpd[777]: warning: unknown[192.0.2.62]: SASL LOGIN authentication "
      "failed: UGFzc3dvcmQ6, sasl_username=info",
      "Nov 28 10:00:03 mx1 postfix/smtpd[777]: warning: unknown[192.0.2.62]: SASL PLAIN authentication "
      "failed: authentication failure, sasl_username=admin",
      "Nov 28 10:00:05 mx1 postfix/smtpd[777]: disconnect from unknown[192.0.2.62] ehlo=1 auth=0/2 "
      "commands=1/3"},
     2},
    {"4: only the summary (AUTH refused before any SASL exchange)",
     {"Nov 28 10:00:00 mx1 postfix/submission/smtpd[900]: disconnect from unknown[192.0.2.63] ehlo=1 "
      "auth=0/1 quit=1 commands=2/3"},
     1},
    {"5: Dovecot refuses plaintext, then auth failed, 1 attempts",
     {"Nov 28 10:00:00 mx1 dovecot: imap-login: Login failed: Plaintext authentication disabled: "
      "user=<>, rip=192.0.2.64, lip=10.0.0.1, session=<P1aiNtextAAAAAAA>",
      "Nov 28 10:00:00 mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 0 secs): "
      "user=<>, rip=192.0.2.64, lip=10.0.0.1, session=<P1aiNtextAAAAAAA>"},
     1},
    {"Dovecot 2.3: two refused plaintext logins, summary with the count",
     {"Nov 28 10:00:00 mx1 dovecot: pop3-login: Login failed: Plaintext authentication disabled: "
      "user=<>, rip=192.0.2.65, lip=10.0.0.1, session=<Q2xlYXJ0ZXh0MTIz>",
      "Nov 28 10:00:01 mx1 dovecot: pop3-login: Login failed: Plaintext authentication disabled: "
      "user=<>, rip=192.0.2.65, lip=10.0.0.1, session=<Q2xlYXJ0ZXh0MTIz>",
      "Nov 28 10:00:01 mx1 dovecot: pop3-login: Disconnected: Connection closed (tried to use "
      "disallowed cleartext auth, 2 attempts in 1 secs): user=<>, rip=192.0.2.65, lip=10.0.0.1, "
      "session=<Q2xlYXJ0ZXh0MTIz>"},
     2},
    {"Dovecot 2.4 auth line with session, then the 2.4 summary",
     {"Nov 28 10:00:00 mx1 dovecot: auth(bob,192.0.2.66,sasl:plain)<U3VibWl0SVB2NjEy>: passwd-file: "
      "Password mismatch",
      "Nov 28 10:00:04 mx1 dovecot: submission-login: Login aborted: Connection closed (auth failed, 2 "
      "attempts in 4 secs) (auth_failed): user=<bob>, method=PLAIN, rip=192.0.2.66, lip=10.0.0.1, "
      "TLS, session=<U3VibWl0SVB2NjEy>"},
     2},
    {"rsyslog's cut tag (no pid): three SASL failures, then auth=0/3",
     {"Nov 28 10:00:00 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.68]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=erin",
      "Nov 28 10:00:02 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.68]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=erin",
      "Nov 28 10:00:04 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.68]: SASL PLAIN "
      "authentication failed: authentication failure, sasl_username=erin",
      "Nov 28 10:00:05 mx1 postfix/submissions-proxyprotoco disconnect from unknown[192.0.2.68] ehlo=1 "
      "auth=0/3 quit=1 commands=2/5"},
     3},
    {"no pid, two concurrent connections of one client: 3 + 3 SASL failures, two summaries",
     {
      "Nov 28 10:00:00 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.69]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=a",
      "Nov 28 10:00:01 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.69]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=b",
      "Nov 28 10:00:02 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.69]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=a",
      "Nov 28 10:00:03 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.69]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=b",
      "Nov 28 10:00:04 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.69]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=a",
      "Nov 28 10:00:05 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.69]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=b",
      "Nov 28 10:00:06 mx1 postfix/submissions-proxyprotoco disconnect from unknown[192.0.2.69] ehlo=1 "
      "auth=0/3 quit=1 commands=2/5",
      "Nov 28 10:00:07 mx1 postfix/submissions-proxyprotoco disconnect from unknown[192.0.2.69] ehlo=1 "
      "auth=0/3 quit=1 commands=2/5"},
     6},
    {"no pid, concurrent: 2 SASL failures, another connection's summary-only attempt, then auth=0/2",
     {
      "Nov 28 10:00:00 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.70]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=a",
      "Nov 28 10:00:01 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.70]: SASL LOGIN "
      "authentication failed: UGFzc3dvcmQ6, sasl_username=a",
      "Nov 28 10:00:02 mx1 postfix/submissions-proxyprotoco disconnect from unknown[192.0.2.70] ehlo=1 "
      "auth=0/1 quit=1 commands=2/3",
      "Nov 28 10:00:03 mx1 postfix/submissions-proxyprotoco disconnect from unknown[192.0.2.70] ehlo=1 "
      "auth=0/2 quit=1 commands=2/4"},
     3},
    {"two Postfix SASL attempts served by Dovecot in one session",
     {"Nov 28 10:00:00 mx1 dovecot: auth: passwd-file(carol,192.0.2.67): unknown user",
      "Nov 28 10:00:02 mx1 postfix/smtpd[55]: warning: unknown[192.0.2.67]: SASL LOGIN authentication "
      "failed: UGFzc3dvcmQ6, sasl_username=carol",
      "Nov 28 10:00:03 mx1 dovecot: auth: passwd-file(dave,192.0.2.67): unknown user",
      "Nov 28 10:00:05 mx1 postfix/smtpd[55]: warning: unknown[192.0.2.67]: SASL LOGIN authentication "
      "failed: UGFzc3dvcmQ6, sasl_username=dave",
      "Nov 28 10:00:05 mx1 postfix/smtpd[55]: disconnect from unknown[192.0.2.67] ehlo=1 auth=0/2 "
      "quit=1 commands=2/4"},
     2},
};

// Every line through parser + normalizer; returns the events (with their own times as `now`).
template <typename F>
void replay(const Scenario& s, F&& on_event) {
  normalize::Normalizer normalizer;
  for (const char* line : s.lines) {
    ingest::SyslogMessage msg;
    ASSERT_EQ(ingest::parse_syslog(line, kNow, msg), ingest::SyslogParseError::ok) << line;
    normalize::AuthEvent e;
    const auto r = normalizer.normalize(msg, e);
    ASSERT_EQ(r.outcome, normalize::NormalizeOutcome::event) << line;
    ASSERT_EQ(e.kind, normalize::EventKind::auth_failure) << line;
    ASSERT_TRUE(msg.has_time) << line;
    on_event(e, msg.time);
  }
}

TEST(ExactlyOnceLines, DeduplicatorCountsEachAttemptOnce) {
  for (const Scenario& s : kScenarios) {
    rules::AttemptDeduplicator dedup;
    std::uint32_t counted = 0;
    replay(s, [&](const normalize::AuthEvent& e, UnixMicros now) { counted += dedup.new_attempts(e, now); });
    EXPECT_EQ(counted, s.attempts) << s.name;
  }
}

TEST(ExactlyOnceLines, FirstLineReportingAnAttemptCountsIt) {
  // Scenario 1: the Dovecot line comes first and carries the attempt; the Postfix lines add nothing.
  rules::AttemptDeduplicator dedup;
  std::vector<std::uint32_t> per_line;
  replay(kScenarios[0], [&](const normalize::AuthEvent& e, UnixMicros now) {
    per_line.push_back(dedup.new_attempts(e, now));
  });
  EXPECT_EQ(per_line, (std::vector<std::uint32_t>{1, 0, 0}));
}

TEST(ExactlyOnceLines, RuleEngineBansAtTheExactCount) {
  for (const Scenario& s : kScenarios) {
    // A rule at exactly the scenario's count must fire; one more must not.
    const std::string yaml =
        "rules:\n"
        "  - name: exact\n"
        "    match: { kind: auth_failure }\n"
        "    window: 10m\n"
        "    threshold: " + std::to_string(s.attempts) + "\n"
        "    ban: { duration: 1h }\n"
        "  - name: one-more\n"
        "    match: { kind: auth_failure }\n"
        "    window: 10m\n"
        "    threshold: " + std::to_string(s.attempts + 1) + "\n"
        "    ban: { duration: 1h }\n";
    rules::RuleSet set;
    std::vector<ConfigError> errors;
    ASSERT_TRUE(rules::parse_rule_text(yaml, "inline", set, errors));
    rules::RuleEngine engine(set, {}, {});
    std::vector<rules::BanDecision> out;
    replay(s, [&](const normalize::AuthEvent& e, UnixMicros now) { engine.on_event(e, now, out); });
    ASSERT_EQ(out.size(), 1u) << s.name;
    EXPECT_EQ(out[0].rule.view(), "exact") << s.name;
  }
}

TEST(ExactlyOnceLines, TieWindowIsBounded) {
  // The Postfix SASL warning 6 s after the Dovecot auth line (beyond the 5 s tie window) is
  // taken for a second attempt.
  const Scenario late{"late",
                      {"Nov 28 10:00:00 mx1 dovecot: auth: passwd-file(alice,192.0.2.70): Password mismatch",
                       "Nov 28 10:00:06 mx1 postfix/smtpd[1]: warning: unknown[192.0.2.70]: SASL LOGIN "
                       "authentication failed: UGFzc3dvcmQ6, sasl_username=alice"},
                      2};
  rules::AttemptDeduplicator dedup;
  std::uint32_t counted = 0;
  replay(late, [&](const normalize::AuthEvent& e, UnixMicros now) { counted += dedup.new_attempts(e, now); });
  EXPECT_EQ(counted, 2u);
}

TEST(ExactlyOnceLines, TieNeedsTheSameUser) {
  const Scenario other{"other user",
                       {"Nov 28 10:00:00 mx1 dovecot: auth: passwd-file(alice,192.0.2.71): Password mismatch",
                        "Nov 28 10:00:02 mx1 postfix/smtpd[1]: warning: unknown[192.0.2.71]: SASL LOGIN "
                        "authentication failed: UGFzc3dvcmQ6, sasl_username=bob"},
                       2};
  rules::AttemptDeduplicator dedup;
  std::uint32_t counted = 0;
  replay(other, [&](const normalize::AuthEvent& e, UnixMicros now) { counted += dedup.new_attempts(e, now); });
  EXPECT_EQ(counted, 2u);
}

}  // namespace
