// Golden tests for parse_syslog, named after the sender that produces each form.
//
// Unless a test says otherwise, the inputs were captured from rsyslog 8.2302 (Debian 12): a
// private rsyslogd (imudp input, omfwd over TCP to a recording listener, omfile) fed the same
// Postfix/Dovecot lines and rendered them with each template; util-linux logger 2.38 for the
// `logger` cases. The bytes are pasted verbatim (rsyslog's octet-counted frames include the
// trailing LF, kept here where it was on the wire).
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/civil_time.h"
#include "ingest/syslog_parser.h"

namespace authwall::ingest {
namespace {

using namespace std::string_view_literals;

UnixMicros at(std::int64_t y, unsigned mo, unsigned d, int h, int mi, int s,
              std::int64_t micros = 0) {
  return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * kMicrosPerSecond + micros;
}

// The test clock: Saturday 2026-11-28 12:00:00 UTC.
const UnixMicros kNow = at(2026, 11, 28, 12, 0, 0);

// A parse result with owned strings, so expectations read as one comparison per field.
struct Parsed {
  SyslogParseError error = SyslogParseError::ok;
  SyslogFormat format = SyslogFormat::rfc3164;
  int facility = -1;
  int severity = -1;
  std::string time;  // RFC 3339 UTC, "" when has_time is false
  std::string hostname, app_name, procid, msgid, structured_data, message;
};

Parsed parse(std::string_view input, UnixMicros now = kNow) {
  SyslogMessage m;
  Parsed p;
  p.error = parse_syslog(input, now, m);
  p.format = m.format;
  p.facility = m.facility;
  p.severity = m.severity;
  p.time = m.has_time ? format_rfc3339(m.time) : "";
  p.hostname = m.hostname;
  p.app_name = m.app_name;
  p.procid = m.procid;
  p.msgid = m.msgid;
  p.structured_data = m.structured_data;
  p.message = m.message;
  return p;
}

// Every view must point into the input (no copies, no dangling).
void expect_views_inside(std::string_view input) {
  SyslogMessage m;
  ASSERT_EQ(parse_syslog(input, kNow, m), SyslogParseError::ok);
  for (std::string_view v : {m.hostname, m.app_name, m.procid, m.msgid, m.structured_data,
                             m.message}) {
    if (v.empty()) continue;
    EXPECT_GE(v.data(), input.data());
    EXPECT_LE(v.data() + v.size(), input.data() + input.size());
  }
}

// ---- rsyslog omfwd, RSYSLOG_TraditionalForwardFormat (the default forward template) --------

TEST(RsyslogTraditionalForwardFormat, PostfixSmtpdWithPid) {
  const auto p = parse(
      "<22>Nov 28 10:00:01 mx1 postfix/smtpd[2345]: NOQUEUE: reject: RCPT from "
      "unknown[198.51.100.7]: 554 5.7.1 <x@example.com>: Relay access denied; from=<a@b> "
      "to=<x@example.com> proto=ESMTP helo=<x>");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.format, SyslogFormat::rfc3164);
  EXPECT_EQ(p.facility, 2);  // mail
  EXPECT_EQ(p.severity, 6);  // info
  EXPECT_EQ(p.time, "2026-11-28T10:00:01Z");
  EXPECT_EQ(p.hostname, "mx1");
  EXPECT_EQ(p.app_name, "postfix/smtpd");
  EXPECT_EQ(p.procid, "2345");
  EXPECT_EQ(p.msgid, "");
  EXPECT_EQ(p.structured_data, "");
  EXPECT_EQ(p.message,
            "NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 554 5.7.1 <x@example.com>: Relay "
            "access denied; from=<a@b> to=<x@example.com> proto=ESMTP helo=<x>");
}

// The template cuts TAG at 32 characters: "[1234]:" is lost, no colon follows the tag.
TEST(RsyslogTraditionalForwardFormat, TagCutAt32CharactersLosesPidAndColon) {
  const auto p = parse(
      "<22>Nov 28 10:00:00 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.1]: "
      "SASL LOGIN authentication failed: UGFzc3dvcmQ6");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.hostname, "mx1");
  EXPECT_EQ(p.app_name, "postfix/submissions-proxyprotoco");
  EXPECT_EQ(p.procid, "");
  EXPECT_EQ(p.message,
            "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6");
}

TEST(RsyslogTraditionalForwardFormat, SpacePaddedDayDovecot) {
  const auto p = parse(
      "<20>Nov  8 09:05:03 mx1 dovecot[812]: imap-login: Login aborted: Connection closed (auth "
      "failed, 3 attempts in 15 secs) (auth_failed): user=<alice>, method=PLAIN, "
      "rip=203.0.113.9, lip=192.0.2.10, TLS, session=<AbCdEf12>");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.severity, 4);
  EXPECT_EQ(p.time, "2026-11-08T09:05:03Z");
  EXPECT_EQ(p.hostname, "mx1");
  EXPECT_EQ(p.app_name, "dovecot");
  EXPECT_EQ(p.procid, "812");
  EXPECT_EQ(p.message.substr(0, 35), "imap-login: Login aborted: Connecti");
}

// An RFC 5424 message received by rsyslog and forwarded in 3164 form: TAG is "app[procid]"
// without a colon, and the BOM of the original MSG is still there.
TEST(RsyslogTraditionalForwardFormat, RelayedRfc5424MessageTagWithoutColonAndBom) {
  const auto p = parse(
      "<22>Nov 28 10:00:02 mx1 postfix[777] \xef\xbb\xbfwarning: unknown[192.0.2.2]: SASL PLAIN "
      "authentication failed:\n");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.app_name, "postfix");
  EXPECT_EQ(p.procid, "777");
  EXPECT_EQ(p.message, "warning: unknown[192.0.2.2]: SASL PLAIN authentication failed:");
}

TEST(RsyslogTraditionalForwardFormat, TagWithoutPid) {
  const auto p = parse("<38>Nov 28 10:00:03 mx1 sshd: no pid here");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.facility, 4);
  EXPECT_EQ(p.hostname, "mx1");
  EXPECT_EQ(p.app_name, "sshd");
  EXPECT_EQ(p.procid, "");
  EXPECT_EQ(p.message, "no pid here");
}

// A sender that put no hostname in its message (journald / glibc syslog() format relayed
// as-is): rsyslog substitutes the sender's name, here "localhost".
TEST(RsyslogTraditionalForwardFormat, HostnameFilledInByRsyslog) {
  const auto p = parse(
      "<30>Nov 28 10:00:04 localhost dovecot[123]: imap-login: Disconnected: Connection closed "
      "(auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=198.51.100.20, "
      "lip=192.0.2.10, session=<x1>");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.hostname, "localhost");
  EXPECT_EQ(p.app_name, "dovecot");
  EXPECT_EQ(p.procid, "123");
}

// ---- rsyslog omfwd, RSYSLOG_ForwardFormat (RFC 3339 timestamp, 3164 layout) -------------------

TEST(RsyslogForwardFormat, Rfc3339TimestampAndTruncatedTag) {
  const auto p = parse(
      "<22>2026-11-28T10:00:00+00:00 mx1 postfix/submissions-proxyprotoco warning: "
      "unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.format, SyslogFormat::rfc3164);
  EXPECT_EQ(p.time, "2026-11-28T10:00:00Z");
  EXPECT_EQ(p.hostname, "mx1");
  EXPECT_EQ(p.app_name, "postfix/submissions-proxyprotoco");
  EXPECT_EQ(p.message.substr(0, 28), "warning: unknown[192.0.2.1]:");
}

TEST(RsyslogForwardFormat, FractionAndOffsetBecomeUtcMicros) {
  const auto p = parse(
      "<22>2026-11-28T10:00:02.123456+01:00 mx1 postfix[777] \xef\xbb\xbfwarning: "
      "unknown[192.0.2.2]: SASL PLAIN authentication failed:");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.time, "2026-11-28T09:00:02.123456Z");
  EXPECT_EQ(p.app_name, "postfix");
  EXPECT_EQ(p.procid, "777");
  EXPECT_EQ(p.message, "warning: unknown[192.0.2.2]: SASL PLAIN authentication failed:");
}

// ---- rsyslog omfwd, RSYSLOG_SyslogProtocol23Format (RFC 5424) --------------------------------

TEST(RsyslogSyslogProtocol23Format, LeadingSpaceLeftInMsgIsDropped) {
  const auto p = parse(
      "<22>1 2026-11-28T10:00:00+00:00 mx1 postfix 1234 - -  warning: unknown[192.0.2.1]: SASL "
      "LOGIN authentication failed: UGFzc3dvcmQ6\n");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.format, SyslogFormat::rfc5424);
  EXPECT_EQ(p.facility, 2);
  EXPECT_EQ(p.severity, 6);
  EXPECT_EQ(p.time, "2026-11-28T10:00:00Z");
  EXPECT_EQ(p.hostname, "mx1");
  EXPECT_EQ(p.app_name, "postfix");  // without parser.permitSlashInProgramName
  EXPECT_EQ(p.procid, "1234");
  EXPECT_EQ(p.msgid, "");
  EXPECT_EQ(p.structured_data, "");
  EXPECT_EQ(p.message,
            "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6");
}

TEST(RsyslogSyslogProtocol23Format, PermitSlashInProgramNameKeepsPostfixService) {
  const auto p = parse(
      "<22>1 2026-11-28T10:00:00+00:00 mx1 postfix/submissions-proxyprotocol/smtpd 1234 - -  "
      "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\n");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.app_name, "postfix/submissions-proxyprotocol/smtpd");
  EXPECT_EQ(p.procid, "1234");
  EXPECT_EQ(p.message.substr(0, 8), "warning:");
}

// The sender's RFC 5424 message carried two SD elements with every escape RFC 5424 defines and
// a BOM; rsyslog relays SD and MSG unchanged.
TEST(RsyslogSyslogProtocol23Format, StructuredDataEscapesSeveralElementsAndBom) {
  const auto p = parse(
      "<22>1 2026-11-28T10:00:02.123456+01:00 mx1 postfix 777 - [meta sequenceId=\"5\" "
      "note=\"a \\\"q\\\" \\\\ \\] x\"][origin ip=\"192.0.2.10\"] \xef\xbb\xbfwarning: "
      "unknown[192.0.2.2]: SASL PLAIN authentication failed:\n");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.time, "2026-11-28T09:00:02.123456Z");
  EXPECT_EQ(p.procid, "777");
  EXPECT_EQ(p.structured_data,
            "[meta sequenceId=\"5\" note=\"a \\\"q\\\" \\\\ \\] x\"][origin ip=\"192.0.2.10\"]");
  EXPECT_EQ(p.message, "warning: unknown[192.0.2.2]: SASL PLAIN authentication failed:");
}

TEST(RsyslogSyslogProtocol23Format, NilProcIdMsgIdAndSd) {
  const auto p = parse("<38>1 2026-11-28T10:00:03+00:00 mx1 sshd - - -  no pid here\n");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.facility, 4);
  EXPECT_EQ(p.app_name, "sshd");
  EXPECT_EQ(p.procid, "");
  EXPECT_EQ(p.msgid, "");
  EXPECT_EQ(p.structured_data, "");
  EXPECT_EQ(p.message, "no pid here");
}

// ---- util-linux logger --rfc5424 (--octet-count framing is removed by the deframer) ----------

TEST(LoggerRfc5424, MsgIdProcIdAndTwoSdElements) {
  const auto p = parse(
      "<13>1 2026-11-28T02:35:26.886655+00:00 vm postfix/submission/smtpd 4242 AUTH "
      "[timeQuality tzKnown=\"1\" isSynced=\"0\"][origin@32473 ip=\"192.0.2.1\"] warning: "
      "unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.facility, 1);
  EXPECT_EQ(p.severity, 5);
  EXPECT_EQ(p.time, "2026-11-28T02:35:26.886655Z");
  EXPECT_EQ(p.hostname, "vm");
  EXPECT_EQ(p.app_name, "postfix/submission/smtpd");
  EXPECT_EQ(p.procid, "4242");
  EXPECT_EQ(p.msgid, "AUTH");
  EXPECT_EQ(p.structured_data,
            "[timeQuality tzKnown=\"1\" isSynced=\"0\"][origin@32473 ip=\"192.0.2.1\"]");
  EXPECT_EQ(p.message.substr(0, 27), "warning: unknown[192.0.2.1]");
}

TEST(LoggerRfc5424, NoTimeQualityAllNil) {
  const auto p = parse(
      "<13>1 2026-11-28T02:35:26.888408+00:00 vm dovecot - - - auth: "
      "passwd-file(alice,192.0.2.1): Password mismatch");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.app_name, "dovecot");
  EXPECT_EQ(p.procid, "");
  EXPECT_EQ(p.message, "auth: passwd-file(alice,192.0.2.1): Password mismatch");
}

TEST(LoggerRfc3164, TcpWithPid) {
  const auto p = parse("<13>Nov 28 02:35:26 vm postfix/smtpd[99]: rfc3164 over tcp\n");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.hostname, "vm");
  EXPECT_EQ(p.app_name, "postfix/smtpd");
  EXPECT_EQ(p.procid, "99");
  EXPECT_EQ(p.message, "rfc3164 over tcp");
}

// ---- file lines (no <PRI>) ----------------------------------------------------------------------

// RSYSLOG_FileFormat: Debian's rsyslog default for /var/log/mail.log.
TEST(RsyslogFileFormat, Rfc3339TimestampFullTag) {
  const auto p = parse(
      "2026-11-28T10:00:00+00:00 mx1 postfix/submissions-proxyprotocol/smtpd[1234]: warning: "
      "unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.facility, -1);
  EXPECT_EQ(p.severity, -1);
  EXPECT_EQ(p.time, "2026-11-28T10:00:00Z");
  EXPECT_EQ(p.hostname, "mx1");
  EXPECT_EQ(p.app_name, "postfix/submissions-proxyprotocol/smtpd");
  EXPECT_EQ(p.procid, "1234");
  EXPECT_EQ(p.message.substr(0, 8), "warning:");
}

// Not captured: the form of the issue text, a local time with microseconds and an offset.
TEST(RsyslogFileFormat, MicrosecondsAndPositiveOffset) {
  const auto p = parse("2026-11-28T10:00:00.123456+01:00 mx1 postfix/smtpd[123]: msg");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.time, "2026-11-28T09:00:00.123456Z");
  EXPECT_EQ(p.app_name, "postfix/smtpd");
  EXPECT_EQ(p.procid, "123");
  EXPECT_EQ(p.message, "msg");
}

TEST(RsyslogFileFormat, NegativeOffsetCrossesMidnight) {
  const auto p = parse("2026-11-28T22:30:00.5-05:00 mx1 dovecot[1]: x");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.time, "2026-11-29T03:30:00.500000Z");
}

TEST(RsyslogTraditionalFileFormat, PaddedDayAndTruncationFreeTag) {
  const auto p = parse(
      "Nov  8 09:05:03 mx1 dovecot[812]: imap-login: Login aborted: Connection closed (auth "
      "failed, 3 attempts in 15 secs) (auth_failed): user=<alice>, method=PLAIN, "
      "rip=203.0.113.9, lip=192.0.2.10, TLS, session=<AbCdEf12>\n");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.time, "2026-11-08T09:05:03Z");
  EXPECT_EQ(p.hostname, "mx1");
  EXPECT_EQ(p.app_name, "dovecot");
  EXPECT_EQ(p.procid, "812");
}

TEST(RsyslogTraditionalFileFormat, CrLfLineEnding) {
  const auto p = parse("Nov 28 10:00:03 mx1 sshd: no pid here\r\n");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.message, "no pid here");
}

// Dovecot's own log file (log_path), default log_timestamp "%b %d %H:%M:%S ": no hostname.
// Not captured from rsyslog: written by Dovecot itself.
TEST(DovecotLogPath, NoHostnameProcessPrefixAsTag) {
  const auto p = parse(
      "Nov 28 10:00:00 imap-login: Info: Disconnected: Connection closed (auth failed, 2 "
      "attempts in 4 secs): user=<bob>, method=PLAIN, rip=198.51.100.20, lip=192.0.2.10, "
      "session=<x2>");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.time, "2026-11-28T10:00:00Z");
  EXPECT_EQ(p.hostname, "");
  EXPECT_EQ(p.app_name, "imap-login");
  EXPECT_EQ(p.message.substr(0, 19), "Info: Disconnected:");
}

TEST(DovecotLogPath, AuthWorkerWithParenthesisedPid) {
  const auto p = parse(
      "Nov 28 10:00:00 auth-worker(4711): Info: passwd-file(alice,192.0.2.1): unknown user");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.hostname, "");
  EXPECT_EQ(p.app_name, "auth-worker(4711)");
  EXPECT_EQ(p.message, "Info: passwd-file(alice,192.0.2.1): unknown user");
}

// log_timestamp = "%Y-%m-%d %H:%M:%S " (common in docker images).
TEST(DovecotLogPath, IsoDateWithSpace) {
  const auto p = parse("2026-11-28 10:00:00 imap-login: Info: Login: user=<a>");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.time, "2026-11-28T10:00:00Z");
  EXPECT_EQ(p.hostname, "");
  EXPECT_EQ(p.app_name, "imap-login");
  EXPECT_EQ(p.message, "Info: Login: user=<a>");
}

// journald ForwardToSyslog / glibc syslog() over the wire: "<PRI>TIMESTAMP TAG[PID]: MSG",
// no hostname. Not captured (rsyslog inserts a hostname when relaying, see above).
TEST(JournaldForwardToSyslog, NoHostnameDovecotWithPid) {
  const auto p = parse(
      "<30>Nov 28 10:00:04 dovecot[123]: imap-login: Disconnected: Connection closed (auth "
      "failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=198.51.100.20, "
      "lip=192.0.2.10, session=<x1>");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.hostname, "");
  EXPECT_EQ(p.app_name, "dovecot");
  EXPECT_EQ(p.procid, "123");
  EXPECT_EQ(p.message.substr(0, 24), "imap-login: Disconnected");
}

TEST(JournaldForwardToSyslog, NoHostnameTagWithoutPid) {
  const auto p = parse("<22>Nov 28 10:00:04 postfix/postscreen: PREGREET 11 after 0.1 from x");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.hostname, "");
  EXPECT_EQ(p.app_name, "postfix/postscreen");
  EXPECT_EQ(p.message, "PREGREET 11 after 0.1 from x");
}

// ---- RFC 3164 year selection (time always passed in) -----------------------------------------

TEST(Rfc3164Year, DecemberLineReadInJanuaryIsLastYear) {
  EXPECT_EQ(parse("<22>Dec 31 23:59:59 mx1 a: x", at(2027, 1, 1, 0, 0, 30)).time,
            "2026-12-31T23:59:59Z");
}

TEST(Rfc3164Year, JanuaryLineReadOnNewYearsEveIsNextYear) {
  // A sender whose clock is a minute ahead of ours.
  EXPECT_EQ(parse("<22>Jan  1 00:00:30 mx1 a: x", at(2026, 12, 31, 23, 59, 40)).time,
            "2027-01-01T00:00:30Z");
}

TEST(Rfc3164Year, SameYearMidYear) {
  EXPECT_EQ(parse("Jun 15 08:00:00 mx1 a: x", at(2026, 6, 16, 0, 0, 0)).time,
            "2026-06-15T08:00:00Z");
  // About half a year away: the nearest candidate wins, whichever side it is on.
  EXPECT_EQ(parse("Jun 15 08:00:00 mx1 a: x", at(2026, 1, 10, 0, 0, 0)).time,
            "2026-06-15T08:00:00Z");
  EXPECT_EQ(parse("Jun 15 08:00:00 mx1 a: x", at(2026, 12, 10, 0, 0, 0)).time,
            "2026-06-15T08:00:00Z");  // 178 days back beats 187 ahead
  EXPECT_EQ(parse("Jun 15 08:00:00 mx1 a: x", at(2026, 12, 20, 0, 0, 0)).time,
            "2027-06-15T08:00:00Z");  // 177 days ahead beats 188 back
}

TEST(Rfc3164Year, February29PicksTheLeapYear) {
  EXPECT_EQ(parse("Feb 29 12:00:00 mx1 a: x", at(2028, 3, 1, 0, 0, 0)).time,
            "2028-02-29T12:00:00Z");
  EXPECT_EQ(parse("Feb 29 12:00:00 mx1 a: x", at(2029, 1, 2, 0, 0, 0)).time,
            "2028-02-29T12:00:00Z");
  // No leap year within a year of now: the date cannot exist.
  EXPECT_EQ(parse("Feb 29 12:00:00 mx1 a: x", at(2026, 6, 1, 0, 0, 0)).error,
            SyslogParseError::bad_timestamp);
}

TEST(Rfc3164Year, NowBeforeEpochStillWorks) {
  EXPECT_EQ(parse("Dec 31 10:00:00 mx1 a: x", at(1969, 12, 31, 11, 0, 0)).time,
            "1969-12-31T10:00:00Z");
}

// ---- other forms and edge cases -------------------------------------------------------------

TEST(Rfc3164Forms, UnpaddedDayAndFraction) {
  const auto p = parse("<22>Nov 8 09:05:03.250 mx1 a[1]: x");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.time, "2026-11-08T09:05:03.250000Z");
  EXPECT_EQ(p.hostname, "mx1");
}

TEST(Rfc3164Forms, NoTimestampWholeRestIsMessage) {
  auto p = parse("<13>hello world");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.time, "");
  EXPECT_EQ(p.app_name, "");
  EXPECT_EQ(p.message, "hello world");
  p = parse("<13>postfix/smtpd[7]: connect from x");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.app_name, "postfix/smtpd");
  EXPECT_EQ(p.procid, "7");
  EXPECT_EQ(p.message, "connect from x");
}

// rsyslog's JSON templates over omfwd, and journald exports, send a bare JSON object with no
// syslog header. Its first token can end in ':' or hold a '[' (`{"MESSAGE":"warning:`,
// `{"tags":["a"],`): it is still all message, never a tag, or the JSON would be cut in two.
TEST(Rfc3164Forms, BareJsonObjectIsAllMessage) {
  constexpr std::string_view kLines[] = {
      R"({"MESSAGE":"warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x","SYSLOG_IDENTIFIER":"postfix/smtpd"})",
      R"(<13>{"tags":["a"], "msg":"x"})",
      R"({"msg":"imap-login: Disconnected"})",
  };
  for (std::string_view line : kLines) {
    const auto p = parse(line);
    ASSERT_EQ(p.error, SyslogParseError::ok) << line;
    EXPECT_EQ(p.app_name, "") << line;
    EXPECT_EQ(p.message.front(), '{') << line;
    EXPECT_EQ(p.message.back(), '}') << line;
  }
  // Nothing after the PRI: the first-byte look must not read past the end (found by the fuzzer).
  const auto p = parse("<28>");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.message, "");
}

TEST(Rfc3164Forms, WordsThatOnlyResembleATimestamp) {
  auto p = parse("<13>May I ask something");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.time, "");
  EXPECT_EQ(p.message, "May I ask something");
  p = parse("2026-style line");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.message, "2026-style line");
  // Once the start is unmistakable, an invalid rest is an error.
  EXPECT_EQ(parse("<13>May 5 x").error, SyslogParseError::bad_timestamp);
  EXPECT_EQ(parse("2026-1 x").error, SyslogParseError::bad_timestamp);
}

TEST(Rfc3164Forms, BracketThatIsNotAPid) {
  const auto p = parse("<13>Nov 28 10:00:00 mx1 foo[bar baz");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.app_name, "foo[bar");
  EXPECT_EQ(p.procid, "");
  EXPECT_EQ(p.message, "baz");
}

TEST(Rfc3164Forms, HostnameOnly) {
  const auto p = parse("<13>Nov 28 10:00:00 mx1");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.hostname, "mx1");
  EXPECT_EQ(p.app_name, "");
  EXPECT_EQ(p.message, "");
}

TEST(Rfc5424Forms, NilTimestampAndNilHostname) {
  const auto p = parse("<165>1 - - - - - -");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.format, SyslogFormat::rfc5424);
  EXPECT_EQ(p.facility, 20);
  EXPECT_EQ(p.severity, 5);
  EXPECT_EQ(p.time, "");
  EXPECT_EQ(p.hostname, "");
  EXPECT_EQ(p.message, "");
}

// RFC 5424 section 6.5, examples 1 and 4.
TEST(Rfc5424Forms, RfcExamples) {
  auto p = parse(
      "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
      "\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.time, "2003-10-11T22:14:15.003000Z");
  EXPECT_EQ(p.hostname, "mymachine.example.com");
  EXPECT_EQ(p.app_name, "su");
  EXPECT_EQ(p.msgid, "ID47");
  EXPECT_EQ(p.message, "'su root' failed for lonvick on /dev/pts/8");
  p = parse(
      "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 "
      "iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 "
      "class=\"high\"]");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.structured_data,
            "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]"
            "[examplePriority@32473 class=\"high\"]");
  EXPECT_EQ(p.message, "");
}

TEST(Rfc5424Forms, NanosecondsTruncatedAndLowercaseZ) {
  EXPECT_EQ(parse("<13>1 2026-11-28t10:00:00.123456789z h a - - - m").time,
            "2026-11-28T10:00:00.123456Z");
}

TEST(Rfc5424Forms, FieldLengthLimitsAreRfc5424s) {
  const std::string host255(255, 'h'), app48(48, 'a'), proc128(128, 'p'), msgid32(32, 'm');
  const auto build = [](const std::string& h, const std::string& a, const std::string& p,
                        const std::string& m) {
    return "<13>1 2026-11-28T10:00:00Z " + h + " " + a + " " + p + " " + m + " - x";
  };
  const auto ok = parse(build(host255, app48, proc128, msgid32));
  ASSERT_EQ(ok.error, SyslogParseError::ok);
  EXPECT_EQ(ok.hostname, host255);
  EXPECT_EQ(ok.app_name, app48);
  EXPECT_EQ(ok.procid, proc128);
  EXPECT_EQ(ok.msgid, msgid32);
  EXPECT_EQ(ok.message, "x");
  EXPECT_EQ(parse(build(host255 + "h", app48, proc128, msgid32)).error,
            SyslogParseError::bad_header);
  EXPECT_EQ(parse(build(host255, app48 + "a", proc128, msgid32)).error,
            SyslogParseError::bad_header);
  EXPECT_EQ(parse(build(host255, app48, proc128 + "p", msgid32)).error,
            SyslogParseError::bad_header);
  EXPECT_EQ(parse(build(host255, app48, proc128, msgid32 + "m")).error,
            SyslogParseError::bad_header);
  // 3164 hostnames share the limit.
  EXPECT_EQ(parse("<13>Nov 28 10:00:00 " + host255 + "h a: x").error,
            SyslogParseError::bad_header);
}

TEST(Rfc5424Forms, SdIdLimitAndUnescapedBracketInValue) {
  const std::string id32(32, 'i');
  EXPECT_EQ(parse("<13>1 - h a - - [" + id32 + " k=\"v\"] m").error, SyslogParseError::ok);
  EXPECT_EQ(parse("<13>1 - h a - - [" + id32 + "i k=\"v\"] m").error,
            SyslogParseError::bad_structured_data);
  const auto p = parse("<13>1 - h a - - [x k=\"a]b\"] m");
  ASSERT_EQ(p.error, SyslogParseError::ok);
  EXPECT_EQ(p.structured_data, "[x k=\"a]b\"]");
  EXPECT_EQ(p.message, "m");
}

TEST(Parser, ViewsPointIntoTheInput) {
  expect_views_inside(
      "<13>1 2026-11-28T02:35:26.886655+00:00 vm postfix/submission/smtpd 4242 AUTH "
      "[timeQuality tzKnown=\"1\"] \xef\xbb\xbf msg");
  expect_views_inside("<22>Nov 28 10:00:00 mx1 postfix/smtpd[1]: msg\r\n");
  expect_views_inside("Nov 28 10:00:00 imap-login: Info: x");
}

TEST(Parser, TrailingCrLfNulIgnored) {
  const std::string input("<22>Nov 28 10:00:00 mx1 a: msg\r\n\0\0"sv);
  EXPECT_EQ(parse(input).message, "msg");
  const std::string input5424("<13>1 - h a - - - msg\n\0"sv);
  EXPECT_EQ(parse(input5424).message, "msg");
}

// ---- invalid input -> the right error -----------------------------------------------------------

TEST(ParserErrors, Empty) {
  EXPECT_EQ(parse("").error, SyslogParseError::empty);
  EXPECT_EQ(parse("\r\n").error, SyslogParseError::empty);
  EXPECT_EQ(parse(std::string("  \t\0\n"sv)).error, SyslogParseError::empty);
}

TEST(ParserErrors, TooLong) {
  std::string big = "<13>1 - h a - - - ";
  big.append(kMaxSyslogMessageLength, 'x');
  EXPECT_EQ(parse(big).error, SyslogParseError::too_long);
  // Trailing CR/LF/NUL do not count.
  std::string fits = "<13>Nov 28 10:00:00 h a: ";
  fits.append(kMaxSyslogMessageLength - fits.size(), 'x');
  fits += "\r\n";
  EXPECT_EQ(parse(fits).error, SyslogParseError::ok);
}

TEST(ParserErrors, BadPriority) {
  EXPECT_EQ(parse("<>1 - - - - - -").error, SyslogParseError::bad_priority);
  EXPECT_EQ(parse("<192>1 - - - - - -").error, SyslogParseError::bad_priority);
  EXPECT_EQ(parse("<1234>x").error, SyslogParseError::bad_priority);
  EXPECT_EQ(parse("<13").error, SyslogParseError::bad_priority);
  EXPECT_EQ(parse("<a>x").error, SyslogParseError::bad_priority);
  EXPECT_EQ(parse("<html>").error, SyslogParseError::bad_priority);
  EXPECT_EQ(parse("<191>1 - - - - - -").error, SyslogParseError::ok);
  EXPECT_EQ(parse("<0>1 - - - - - -").error, SyslogParseError::ok);
}

TEST(ParserErrors, BadVersion) {
  EXPECT_EQ(parse("<13>2 2026-11-28T10:00:00Z h a - - - m").error, SyslogParseError::bad_version);
  EXPECT_EQ(parse("<13>10 2026-11-28T10:00:00Z h a - - - m").error,
            SyslogParseError::bad_version);
}

TEST(ParserErrors, BadTimestamp) {
  for (std::string_view s : {
           "<13>1 2026-13-28T10:00:00Z h a - - - m"sv,  // month 13
           "<13>1 2026-02-29T10:00:00Z h a - - - m"sv,  // not a leap year
           "<13>1 2026-11-28T24:00:00Z h a - - - m"sv,  // hour 24
           "<13>1 2026-11-28T10:60:00Z h a - - - m"sv,
           "<13>1 2026-11-28 10:00:00Z h a - - - m"sv,  // space separator is not 5424
           "<13>1 2026-11-28T10:00:00+0100 h a - - - m"sv,
           "<13>1 2026-11-28T10:00:00.Z h a - - - m"sv,
           "<13>1 2026-11-28T10:00:00Zjunk h a - - - m"sv,
           "<13>1 yesterday h a - - - m"sv,
           "<22>Nov 31 10:00:00 mx1 a: x"sv,  // no such day in any year
           "<22>Nov 28 25:00:00 mx1 a: x"sv,
           "<22>Nov 28 10:00 mx1 a: x"sv,
           "<22>Nov 28 10:00:00mx1 a: x"sv,
           "2026-11-28T10:00 mx1 a: x"sv,
           "2026-11-28X10:00:00 mx1 a: x"sv,
       }) {
    EXPECT_EQ(parse(s).error, SyslogParseError::bad_timestamp) << s;
  }
}

TEST(ParserErrors, BadHeader) {
  for (std::string_view s : {
           "<13>1 -"sv,
           "<13>1 - h"sv,
           "<13>1 - h a - -"sv,  // SD missing after MSGID: header incomplete
           "<13>1 - h a  - - - m"sv,  // empty field
           "<13>1 - h\x01 a - - - m"sv,  // not PRINTUSASCII
           "<13>Nov 28 10:00:00"sv,
           "<13>Nov 28 10:00:00   "sv,
       }) {
    EXPECT_EQ(parse(s).error, SyslogParseError::bad_header) << s;
  }
}

TEST(ParserErrors, BadStructuredData) {
  for (std::string_view s : {
           "<13>1 - h a - - x"sv,
           "<13>1 - h a - - -x"sv,
           "<13>1 - h a - - [] m"sv,
           "<13>1 - h a - - [id m"sv,
           "<13>1 - h a - - [id k=v] m"sv,
           "<13>1 - h a - - [id k=\"v] m"sv,  // unterminated value
           "<13>1 - h a - - [id k=\"v\\\"] m"sv,
           "<13>1 - h a - - [id k=\"v\"]m"sv,  // no SP before MSG
           "<13>1 - h a - - [id  k=\"v\"] m"sv,
           "<13>1 - h a - - [id =\"v\"] m"sv,
           "<13>1 - h a - - [id k=\"v\\"sv,
       }) {
    EXPECT_EQ(parse(s).error, SyslogParseError::bad_structured_data) << s;
  }
}

TEST(ParserErrors, ToStringNamesAreStable) {
  EXPECT_EQ(to_string(SyslogParseError::ok), "ok");
  EXPECT_EQ(to_string(SyslogParseError::empty), "empty");
  EXPECT_EQ(to_string(SyslogParseError::too_long), "too_long");
  EXPECT_EQ(to_string(SyslogParseError::bad_priority), "bad_priority");
  EXPECT_EQ(to_string(SyslogParseError::bad_version), "bad_version");
  EXPECT_EQ(to_string(SyslogParseError::bad_timestamp), "bad_timestamp");
  EXPECT_EQ(to_string(SyslogParseError::bad_header), "bad_header");
  EXPECT_EQ(to_string(SyslogParseError::bad_structured_data), "bad_structured_data");
}

}  // namespace
}  // namespace authwall::ingest
