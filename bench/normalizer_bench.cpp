// Per-line cost of the normalize stage: parse_syslog + Normalizer on realistic mail-log lines
// (the shapes bench/gen_mail_log.py writes), by line family, and the JSON form of an event.
// `authwall check` targets >= 3M lines/s on one core for the whole pipeline on an ~80/20 mix,
// i.e. <= ~330 ns per line including reading and counting.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/civil_time.h"
#include "ingest/syslog_parser.h"
#include "normalize/custom_patterns.h"
#include "normalize/event_json.h"
#include "normalize/normalizer.h"

namespace {

using namespace authwall;
using namespace authwall::normalize;

const UnixMicros kNow = (days_from_civil(2026, 11, 28) * 86400 + 12 * 3600) * kMicrosPerSecond;

// Ordinary traffic: ~80% of a mail log, and all of it must be rejected fast.
const std::vector<std::string_view> kOrdinary = {
    "Nov 28 10:00:00 mx1 postfix/smtpd[4012]: connect from host-812.example.net[198.51.100.7]",
    "Nov 28 10:00:00 mx1 postfix/smtpd[4012]: disconnect from host-812.example.net[198.51.100.7] "
    "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
    "Nov 28 10:00:01 mx2 postfix/cleanup[3011]: 4F2A81C0E3: message-id=<a1B2c3D4e5F6g7H8.4711@example.org>",
    "Nov 28 10:00:01 mx1 postfix/qmgr[812]: 4F2A81C0E3: from=<alice@example.org>, size=4123, nrcpt=1 "
    "(queue active)",
    "Nov 28 10:00:01 mx1 postfix/qmgr[812]: 4F2A81C0E3: removed",
    "Nov 28 10:00:02 mx1 postfix/smtp[6001]: 4F2A81C0E3: to=<bob@example.net>, "
    "relay=mx.example.net[203.0.113.5]:25, delay=0.8, delays=0.1/0/0.3/0.2, dsn=2.0.0, status=sent "
    "(250 2.0.0 OK  1700000000 a1B2c3D4e5F6g7H8 - gsmtp)",
    "Nov 28 10:00:02 mx2 dovecot: lmtp(carol@example.org)<1201><a1B2c3D4e5F6g7H8>: "
    "msgid=<x1y2z3@example.com>: saved mail to INBOX",
    "Nov 28 10:00:03 mx1 dovecot: imap(dave@example.org)<1202><b1B2c3D4e5F6g7H8>: Logged out in=420 "
    "out=9120 deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0",
};

const std::vector<std::string_view> kPostfixFailures = {
    "Nov 28 10:00:04 mx1 postfix/submission/smtpd[5002]: warning: unknown[192.0.2.7]: SASL LOGIN "
    "authentication failed: UGFzc3dvcmQ6, sasl_username=admin",
    "Nov 28 10:00:04 mx1 postfix/smtpd[4013]: disconnect from unknown[192.0.2.7] ehlo=1 auth=0/1 "
    "rset=1 quit=1 commands=3/4",
    "Nov 28 10:00:05 mx1 postfix/postscreen[900]: PREGREET 14 after 0.08 from [192.0.2.8]:40112: "
    "EHLO ylmf-pc\\r\\n",
    "Nov 28 10:00:05 mx1 postfix/smtpd[4014]: NOQUEUE: reject: RCPT from unknown[2001:db8:bad::7]: "
    "554 5.7.1 <victim@example.com>: Relay access denied; from=<spam@example.biz> "
    "to=<victim@example.com> proto=ESMTP helo=<WIN-1234>",
};

const std::vector<std::string_view> kDovecotFailures = {
    "Nov 28 10:00:06 mx1 dovecot: imap-login: Disconnected (auth failed, 3 attempts in 12 secs): "
    "user=<info>, method=PLAIN, rip=192.0.2.9, lip=198.51.100.250, TLS, session=<c1B2c3D4e5F6g7H8>",
    "Nov 28 10:00:06 mx1 dovecot: auth: passwd-file(admin,192.0.2.9): unknown user",
    "Nov 28 10:00:07 mx1 dovecot: auth-worker(1203): pam(sales,192.0.2.10): pam_authenticate() "
    "failed: Authentication failure (password mismatch?)",
    "Nov 28 10:00:07 mx1 dovecot: pop3-login: Disconnected (no auth attempts in 3 secs): user=<>, "
    "rip=2001:db8:bad:3::1, lip=198.51.100.250, TLS handshaking: Connection closed, "
    "session=<d1B2c3D4e5F6g7H8>",
};

const std::vector<std::string_view> kJson = {
    "Nov 28 10:00:08 mx1 dovecot: stats: {\"event\":\"auth_request_finished\",\"hostname\":\"mx1\","
    "\"start_time\":1795860000.5,\"end_time\":1795860001.25,\"categories\":[\"auth\"],\"fields\":"
    "{\"user\":\"alice\",\"service\":\"imap\",\"mechanism\":\"PLAIN\",\"session\":\"AbCdEf12\","
    "\"remote_ip\":\"192.0.2.10\",\"remote_port\":51234,\"error\":\"authentication failed\"}}",
    "<22>1 2026-11-28T10:00:00Z relay rsyslogd - - - {\"timestamp\":\"2026-11-28T09:59:58.5+01:00\","
    "\"hostname\":\"mx1\",\"programname\":\"postfix/submission/smtpd\",\"procid\":\"4242\",\"msg\":\" "
    "warning: unknown[192.0.2.40]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\"}",
};

void run_lines(benchmark::State& state, const std::vector<std::string_view>& lines,
               Normalizer& normalizer) {
  ingest::SyslogMessage msg;
  AuthEvent event;
  std::size_t events = 0;
  for (auto _ : state) {
    for (const auto line : lines) {
      if (ingest::parse_syslog(line, kNow, msg) != ingest::SyslogParseError::ok) continue;
      events += normalizer.normalize(msg, event).outcome == NormalizeOutcome::event;
    }
    benchmark::DoNotOptimize(events);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(lines.size()));
}

void BM_Ordinary(benchmark::State& state) {
  Normalizer n;
  run_lines(state, kOrdinary, n);
}
BENCHMARK(BM_Ordinary);

void BM_PostfixFailures(benchmark::State& state) {
  Normalizer n;
  run_lines(state, kPostfixFailures, n);
}
BENCHMARK(BM_PostfixFailures);

void BM_DovecotFailures(benchmark::State& state) {
  Normalizer n;
  run_lines(state, kDovecotFailures, n);
}
BENCHMARK(BM_DovecotFailures);

void BM_JsonMessages(benchmark::State& state) {
  Normalizer n;
  run_lines(state, kJson, n);
}
BENCHMARK(BM_JsonMessages);

// The 80/20 mix of bench/gen_mail_log.py: 4 ordinary lines per failure line.
void BM_Mix80_20(benchmark::State& state) {
  std::vector<std::string_view> mix;
  for (std::size_t i = 0; i < 4; ++i) {
    for (auto l : kOrdinary) mix.push_back(l);
  }
  for (auto l : kPostfixFailures) mix.push_back(l);
  for (auto l : kDovecotFailures) mix.push_back(l);
  Normalizer n;
  run_lines(state, mix, n);
}
BENCHMARK(BM_Mix80_20);

// An operator pattern must not slow down lines of other programs (they are never tried).
void BM_OrdinaryWithCustomPattern(benchmark::State& state) {
  CustomPatternSpec spec;
  spec.program = "gitea";
  spec.regex = R"(^Failed authentication attempt for (?P<user>\S*) from (?P<ip>[0-9A-Fa-f.:]+):)";
  std::vector<ConfigError> errors;
  Normalizer n(CustomPatternSet::build({spec}, errors));
  run_lines(state, kOrdinary, n);
}
BENCHMARK(BM_OrdinaryWithCustomPattern);

void BM_CustomPatternMatch(benchmark::State& state) {
  CustomPatternSpec spec;
  spec.program = "gitea";
  spec.regex = R"(^Failed authentication attempt for (?P<user>\S*) from (?P<ip>[0-9A-Fa-f.:]+):(?P<port>\d+):)";
  std::vector<ConfigError> errors;
  Normalizer n(CustomPatternSet::build({spec}, errors));
  const std::vector<std::string_view> lines = {
      "Nov 28 10:00:00 git gitea[812]: Failed authentication attempt for admin from "
      "192.0.2.50:40112: invalid credentials"};
  run_lines(state, lines, n);
}
BENCHMARK(BM_CustomPatternMatch);

void BM_EventJson(benchmark::State& state) {
  Normalizer n;
  ingest::SyslogMessage msg;
  AuthEvent event;
  if (ingest::parse_syslog(kDovecotFailures[0], kNow, msg) != ingest::SyslogParseError::ok ||
      n.normalize(msg, event).outcome != NormalizeOutcome::event) {
    state.SkipWithError("sample line is not an event");
    return;
  }
  std::string out;
  out.reserve(1 << 16);
  for (auto _ : state) {
    out.clear();
    append_event_json(event, out, 123456);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EventJson);

}  // namespace
