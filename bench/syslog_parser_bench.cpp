// Per-message cost of the syslog layer: parse_syslog on realistic Postfix/Dovecot lines in each
// form rsyslog produces, and the RFC 6587 deframer on a stream of such messages.
// Targets (2-core machine, one core): <= 100 ns per RFC 3164 line, <= 200 ns per RFC 5424 message.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/civil_time.h"
#include "ingest/syslog_parser.h"
#include "ingest/tcp_deframer.h"

namespace {

using namespace authwall;
using namespace authwall::ingest;

const UnixMicros kNow = (days_from_civil(2026, 11, 28) * 86400 + 12 * 3600) * kMicrosPerSecond;

// RSYSLOG_TraditionalForwardFormat and the traditional file form (captured from rsyslog 8.2302).
const std::vector<std::string_view> kRfc3164 = {
    "<22>Nov 28 10:00:00 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.1]: SASL "
    "LOGIN authentication failed: UGFzc3dvcmQ6",
    "<22>Nov 28 10:00:01 mx1 postfix/smtpd[2345]: NOQUEUE: reject: RCPT from "
    "unknown[198.51.100.7]: 554 5.7.1 <x@example.com>: Relay access denied; from=<a@b> "
    "to=<x@example.com> proto=ESMTP helo=<x>",
    "<20>Nov  8 09:05:03 mx1 dovecot[812]: imap-login: Login aborted: Connection closed (auth "
    "failed, 3 attempts in 15 secs) (auth_failed): user=<alice>, method=PLAIN, "
    "rip=203.0.113.9, lip=192.0.2.10, TLS, session=<AbCdEf12>",
    "Nov 28 10:00:03 mx1 postfix/submission/smtpd[4242]: warning: unknown[192.0.2.1]: SASL "
    "PLAIN authentication failed: authentication failure, sasl_username=alice",
};

// RSYSLOG_FileFormat (Debian's /var/log/mail.log) and RSYSLOG_ForwardFormat.
const std::vector<std::string_view> kRfc3339Lines = {
    "2026-11-28T10:00:00.123456+01:00 mx1 postfix/submissions-proxyprotocol/smtpd[1234]: "
    "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
    "<20>2026-11-08T09:05:03+00:00 mx1 dovecot[812]: imap-login: Login aborted: Connection "
    "closed (auth failed, 3 attempts in 15 secs) (auth_failed): user=<alice>, method=PLAIN, "
    "rip=203.0.113.9, lip=192.0.2.10, TLS, session=<AbCdEf12>",
};

// RSYSLOG_SyslogProtocol23Format and logger --rfc5424.
const std::vector<std::string_view> kRfc5424 = {
    "<22>1 2026-11-28T10:00:00+00:00 mx1 postfix 1234 - -  warning: unknown[192.0.2.1]: SASL "
    "LOGIN authentication failed: UGFzc3dvcmQ6\n",
    "<20>1 2026-11-08T09:05:03+00:00 mx1 dovecot 812 - -  imap-login: Login aborted: Connection "
    "closed (auth failed, 3 attempts in 15 secs) (auth_failed): user=<alice>, method=PLAIN, "
    "rip=203.0.113.9, lip=192.0.2.10, TLS, session=<AbCdEf12>\n",
    "<13>1 2026-11-28T02:35:26.886655+00:00 vm postfix/submission/smtpd 4242 AUTH [timeQuality "
    "tzKnown=\"1\" isSynced=\"0\"][origin@32473 ip=\"192.0.2.1\"] warning: unknown[192.0.2.1]: "
    "SASL LOGIN authentication failed: UGFzc3dvcmQ6",
    "<22>1 2026-11-28T10:00:02.123456+01:00 mx1 postfix/submissions-proxyprotocol/smtpd 777 - "
    "[meta sequenceId=\"5\"] \xef\xbb\xbfwarning: unknown[192.0.2.2]: SASL PLAIN authentication "
    "failed:",
};

void parse_all(benchmark::State& state, const std::vector<std::string_view>& lines) {
  SyslogMessage m;
  std::size_t bytes = 0;
  for (auto line : lines) bytes += line.size();
  for (auto _ : state) {
    for (auto line : lines) {
      const SyslogParseError e = parse_syslog(line, kNow, m);
      benchmark::DoNotOptimize(e);
      benchmark::DoNotOptimize(m);
    }
  }
  for (auto line : lines) {
    if (parse_syslog(line, kNow, m) != SyslogParseError::ok) state.SkipWithError("parse failed");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(lines.size()));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}

void BM_ParseRfc3164(benchmark::State& state) { parse_all(state, kRfc3164); }
void BM_ParseRfc3339FileLine(benchmark::State& state) { parse_all(state, kRfc3339Lines); }
void BM_ParseRfc5424(benchmark::State& state) { parse_all(state, kRfc5424); }
BENCHMARK(BM_ParseRfc3164);
BENCHMARK(BM_ParseRfc3339FileLine);
BENCHMARK(BM_ParseRfc5424);

// A 1 MiB stream of frames, fed in 64 KiB reads (frames cross read boundaries as on a socket).
std::string make_stream(bool octet_counted, std::size_t& frames) {
  std::string s;
  frames = 0;
  while (s.size() < (1u << 20)) {
    for (auto m : kRfc5424) {
      std::string_view body = m;
      if (!body.empty() && body.back() == '\n') body.remove_suffix(1);
      if (octet_counted) {
        s += std::to_string(body.size() + 1);  // rsyslog counts its trailing LF
        s += ' ';
      }
      s += body;
      s += '\n';
      ++frames;
    }
  }
  return s;
}

void deframe_stream(benchmark::State& state, bool octet_counted, bool parse) {
  std::size_t frames = 0;
  const std::string stream = make_stream(octet_counted, frames);
  constexpr std::size_t kRead = 64 * 1024;
  TcpDeframer d;
  SyslogMessage m;
  std::size_t seen = 0;
  for (auto _ : state) {
    for (std::size_t pos = 0; pos < stream.size(); pos += kRead) {
      d.feed(std::string_view(stream).substr(pos, kRead), [&](std::string_view f) {
        ++seen;
        if (parse) {
          const SyslogParseError e = parse_syslog(f, kNow, m);
          benchmark::DoNotOptimize(e);
        }
        benchmark::DoNotOptimize(f);
      });
    }
  }
  if (seen != frames * state.iterations()) state.SkipWithError("frame count mismatch");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(frames));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(stream.size()));
}

void BM_DeframeOctetCounted(benchmark::State& state) { deframe_stream(state, true, false); }
void BM_DeframeLf(benchmark::State& state) { deframe_stream(state, false, false); }
void BM_DeframeAndParseOctetCounted(benchmark::State& state) { deframe_stream(state, true, true); }
BENCHMARK(BM_DeframeOctetCounted);
BENCHMARK(BM_DeframeLf);
BENCHMARK(BM_DeframeAndParseOctetCounted);

}  // namespace
