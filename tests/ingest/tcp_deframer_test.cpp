// RFC 6587 deframer tests. The rsyslog streams were captured from rsyslog 8.2302 omfwd over TCP
// (TCP_Framing="octet-counted" and the default LF framing), the logger ones from util-linux
// logger 2.38 (`logger -T --rfc5424 --octet-count`).
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "ingest/syslog_parser.h"
#include "ingest/tcp_deframer.h"

namespace authwall::ingest {
namespace {

using namespace std::string_view_literals;

using Frames = std::vector<std::string>;

// Feeds `chunks` one by one, then finish(); returns the frames as owned strings.
Frames deframe(TcpDeframer& d, const std::vector<std::string_view>& chunks) {
  Frames frames;
  const auto collect = [&](std::string_view f) { frames.emplace_back(f); };
  for (std::string_view c : chunks) d.feed(c, collect);
  d.finish(collect);
  return frames;
}

Frames deframe(std::string_view stream, std::size_t max_frame = kMaxSyslogMessageLength) {
  TcpDeframer d(max_frame);
  return deframe(d, {stream});
}

// rsyslog omfwd TCP_Framing="octet-counted", RSYSLOG_SyslogProtocol23Format (captured).
const std::string_view kRsyslogOctetCounted =
    "130 <22>1 2026-11-28T10:00:00+00:00 mx1 postfix 1234 - -  warning: unknown[192.0.2.1]: "
    "SASL LOGIN authentication failed: UGFzc3dvcmQ6\n"
    "60 <38>1 2026-11-28T10:00:03+00:00 mx1 sshd - - -  no pid here\n";

// logger -T --rfc5424 --octet-count (captured): no LF anywhere.
const std::string_view kLoggerOctetCounted =
    "220 <13>1 2026-11-28T02:35:26.886655+00:00 vm postfix/submission/smtpd 4242 AUTH "
    "[timeQuality tzKnown=\"1\" isSynced=\"0\"][origin@32473 ip=\"192.0.2.1\"] warning: "
    "unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
    "109 <13>1 2026-11-28T02:35:26.888408+00:00 vm dovecot - - - auth: "
    "passwd-file(alice,192.0.2.1): Password mismatch";

// rsyslog omfwd default (LF) framing, RSYSLOG_TraditionalForwardFormat (captured).
const std::string_view kRsyslogLf =
    "<22>Nov 28 10:00:00 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.1]: SASL "
    "LOGIN authentication failed: UGFzc3dvcmQ6\n"
    "<38>Nov 28 10:00:03 mx1 sshd: no pid here\n";

TEST(TcpDeframerRsyslog, OmfwdOctetCountedFramesIncludeTheirLf) {
  TcpDeframer d;
  const Frames f = deframe(d, {kRsyslogOctetCounted});
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0],
            "<22>1 2026-11-28T10:00:00+00:00 mx1 postfix 1234 - -  warning: unknown[192.0.2.1]: "
            "SASL LOGIN authentication failed: UGFzc3dvcmQ6");
  EXPECT_EQ(f[1], "<38>1 2026-11-28T10:00:03+00:00 mx1 sshd - - -  no pid here");
  EXPECT_EQ(d.counters().frames, 2u);
  EXPECT_EQ(d.counters().octet_counted, 2u);
  EXPECT_FALSE(d.failed());
  // Each frame parses.
  for (const auto& frame : f) {
    SyslogMessage m;
    EXPECT_EQ(parse_syslog(frame, 0, m), SyslogParseError::ok) << frame;
  }
}

TEST(TcpDeframerLogger, Rfc5424OctetCountWithoutLf) {
  const Frames f = deframe(kLoggerOctetCounted);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].substr(0, 10), "<13>1 2026");
  EXPECT_EQ(f[0].size(), 220u);
  EXPECT_EQ(f[1],
            "<13>1 2026-11-28T02:35:26.888408+00:00 vm dovecot - - - auth: "
            "passwd-file(alice,192.0.2.1): Password mismatch");
}

TEST(TcpDeframerRsyslog, OmfwdLfFraming) {
  const Frames f = deframe(kRsyslogLf);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[1], "<38>Nov 28 10:00:03 mx1 sshd: no pid here");
}

// A stream that changes framing between frames, with CRLF, NUL trailers, blank lines and a
// file-style line that starts with digits but is not a count.
std::string mixed_stream() {
  std::string s;
  s += kRsyslogOctetCounted;
  s += kRsyslogLf;
  s += "\r\n\r\n";
  s += "<13>Nov 28 02:35:26 vm postfix/smtpd[99]: crlf line\r\n";
  s += kLoggerOctetCounted;
  s += "\n";  // some senders add LF after a counted frame, outside the count
  s += "2026-11-28T10:00:00+00:00 mx1 dovecot[812]: digits first\n";
  s += std::string("<13>Nov 28 02:35:26 vm a: nul terminated\0"sv);
  s += "5 <13>x\0\0";
  s += "<13>Nov 28 02:35:26 vm a: last line without LF";
  return s;
}

const Frames kMixedExpected = {
    "<22>1 2026-11-28T10:00:00+00:00 mx1 postfix 1234 - -  warning: unknown[192.0.2.1]: SASL "
    "LOGIN authentication failed: UGFzc3dvcmQ6",
    "<38>1 2026-11-28T10:00:03+00:00 mx1 sshd - - -  no pid here",
    "<22>Nov 28 10:00:00 mx1 postfix/submissions-proxyprotoco warning: unknown[192.0.2.1]: SASL "
    "LOGIN authentication failed: UGFzc3dvcmQ6",
    "<38>Nov 28 10:00:03 mx1 sshd: no pid here",
    "<13>Nov 28 02:35:26 vm postfix/smtpd[99]: crlf line",
    std::string(kLoggerOctetCounted.substr(4, 220)),
    std::string(kLoggerOctetCounted.substr(224 + 4)),
    "2026-11-28T10:00:00+00:00 mx1 dovecot[812]: digits first",
    "<13>Nov 28 02:35:26 vm a: nul terminated",
    "<13>x",
    "<13>Nov 28 02:35:26 vm a: last line without LF",
};

TEST(TcpDeframerStream, MixedFramingInOneRead) {
  TcpDeframer d;
  const std::string s = mixed_stream();
  EXPECT_EQ(deframe(d, {s}), kMixedExpected);
  EXPECT_EQ(d.counters().octet_counted, 5u);
  EXPECT_EQ(d.counters().oversize_drops, 0u);
  EXPECT_FALSE(d.failed());
}

TEST(TcpDeframerStream, SplitAtEveryBytePositionGivesTheSameFrames) {
  const std::string s = mixed_stream();
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    TcpDeframer d;
    const std::string_view sv(s);
    EXPECT_EQ(deframe(d, {sv.substr(0, cut), sv.substr(cut)}), kMixedExpected) << "cut " << cut;
    EXPECT_EQ(d.pending_bytes(), 0u);
  }
}

TEST(TcpDeframerStream, SplitAtEveryPairOfPositionsGivesTheSameFrames) {
  // Three reads: covers a frame spanning more than two reads, and cuts inside the count.
  const std::string s = mixed_stream().substr(0, 400);
  TcpDeframer reference;
  const Frames expected = deframe(reference, {s});
  ASSERT_GE(expected.size(), 3u);
  const std::string_view sv(s);
  for (std::size_t a = 0; a <= s.size(); a += 3) {
    for (std::size_t b = a; b <= s.size(); b += 5) {
      TcpDeframer d;
      ASSERT_EQ(deframe(d, {sv.substr(0, a), sv.substr(a, b - a), sv.substr(b)}), expected)
          << a << "," << b;
    }
  }
}

TEST(TcpDeframerStream, OneByteReads) {
  const std::string s = mixed_stream();
  std::vector<std::string_view> chunks;
  for (std::size_t i = 0; i < s.size(); ++i) chunks.push_back(std::string_view(s).substr(i, 1));
  TcpDeframer d;
  EXPECT_EQ(deframe(d, chunks), kMixedExpected);
}

TEST(TcpDeframerStream, WholeFramesAreNotCopied) {
  const std::string s(kRsyslogOctetCounted);
  TcpDeframer d;
  std::vector<std::string_view> views;
  d.feed(s, [&](std::string_view f) { views.push_back(f); });
  ASSERT_EQ(views.size(), 2u);
  for (auto v : views) {
    EXPECT_GE(v.data(), s.data());
    EXPECT_LE(v.data() + v.size(), s.data() + s.size());
  }
}

TEST(TcpDeframerStream, BufferIsReusedAcrossSplitFrames) {
  // Split each frame in two reads; after the first frame the buffer must not move or grow.
  const std::string frame = "<13>Nov 28 02:35:26 vm postfix/smtpd[99]: a line of some length\n";
  TcpDeframer d;
  const char* first_data = nullptr;
  std::size_t n = 0;
  for (int i = 0; i < 50; ++i) {
    std::string_view sv(frame);
    d.feed(sv.substr(0, 30), [](std::string_view) {});
    d.feed(sv.substr(30), [&](std::string_view f) {
      ++n;
      if (!first_data) first_data = f.data();
      EXPECT_EQ(f.data(), first_data);
      EXPECT_EQ(f, sv.substr(0, sv.size() - 1));
    });
  }
  EXPECT_EQ(n, 50u);
}

// ---- lying counts, oversize frames ------------------------------------------------------------

TEST(TcpDeframerLimits, CountAboveMaxFrameFailsWithoutAllocating) {
  TcpDeframer d(1024);
  Frames f;
  EXPECT_FALSE(d.feed("1025 <13>x", [&](std::string_view s) { f.emplace_back(s); }));
  EXPECT_TRUE(d.failed());
  EXPECT_EQ(d.error(), TcpDeframerError::count_too_large);
  EXPECT_EQ(d.counters().framing_errors, 1u);
  EXPECT_EQ(d.pending_bytes(), 0u);
  EXPECT_TRUE(f.empty());
  // Later bytes are ignored and counted: " <13>x" after the count, then the whole next read.
  const std::string_view line = "<13>Nov 28 02:35:26 vm a: x\n";
  EXPECT_FALSE(d.feed(line, [&](std::string_view s) { f.emplace_back(s); }));
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(d.counters().ignored_bytes, 6u + line.size());
}

TEST(TcpDeframerLimits, DigitRunLongerThanAnyCountFails) {
  TcpDeframer d;
  EXPECT_FALSE(d.feed("99999999999999999999999999999999 x", [](std::string_view) {}));
  EXPECT_EQ(d.error(), TcpDeframerError::count_too_large);
  TcpDeframer zeros;
  EXPECT_FALSE(zeros.feed(std::string(30, '0'), [](std::string_view) {}));
  EXPECT_EQ(zeros.error(), TcpDeframerError::count_too_large);
}

TEST(TcpDeframerLimits, LongDigitRunThatIsNotACountStartsALine) {
  // Epoch and compact timestamps are longer than any count max_frame allows; only an SP after
  // the digits would make them a count. Fed whole and a byte at a time (digits spanning reads).
  const std::string stream =
      "1732788000.123 mx1 postfix/smtpd[1]: epoch first\n"
      "20261128T100000Z mx1 dovecot[2]: compact first\n"
      "12 <13>counted\n";
  for (const std::size_t chunk : {stream.size(), std::size_t{1}}) {
    TcpDeframer d(1024);
    Frames f;
    for (std::size_t k = 0; k < stream.size(); k += chunk) {
      EXPECT_TRUE(d.feed(std::string_view(stream).substr(k, chunk),
                         [&](std::string_view s) { f.emplace_back(s); }));
    }
    ASSERT_EQ(f.size(), 3u) << "chunk " << chunk;
    EXPECT_EQ(f[0], "1732788000.123 mx1 postfix/smtpd[1]: epoch first");
    EXPECT_EQ(f[1], "20261128T100000Z mx1 dovecot[2]: compact first");
    EXPECT_EQ(f[2], "<13>counted");
    EXPECT_FALSE(d.failed());
  }
  // The same digits followed by SP are a count, and too large for this deframer.
  TcpDeframer d(1024);
  EXPECT_FALSE(d.feed("1732788000 <13>x", [](std::string_view) {}));
  EXPECT_EQ(d.error(), TcpDeframerError::count_too_large);
}

TEST(TcpDeframerLimits, CountOfZeroFails) {
  TcpDeframer d;
  EXPECT_FALSE(d.feed("0 <13>x", [](std::string_view) {}));
  EXPECT_EQ(d.error(), TcpDeframerError::bad_count);
  EXPECT_EQ(to_string(d.error()), "bad_count");
}

TEST(TcpDeframerLimits, CountAtMaxFrameIsAccepted) {
  const std::string body(100, 'x');
  const Frames f = deframe("100 " + body, 100);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0], body);
}

TEST(TcpDeframerLimits, CountLargerThanSentIsTruncatedAtEof) {
  // The count claims more than the sender wrote before closing: nothing is delivered, and only
  // the bytes that arrived were buffered.
  TcpDeframer d;
  Frames f;
  d.feed("500 <13>short", [&](std::string_view s) { f.emplace_back(s); });
  EXPECT_EQ(d.pending_bytes(), 9u);
  d.finish([&](std::string_view s) { f.emplace_back(s); });
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(d.counters().truncated, 1u);
  EXPECT_EQ(d.pending_bytes(), 0u);
}

TEST(TcpDeframerLimits, CountCutOffAtEofIsTruncated) {
  TcpDeframer d;
  EXPECT_TRUE(deframe(d, {"12"}).empty());
  EXPECT_EQ(d.counters().truncated, 1u);
}

TEST(TcpDeframerLimits, OversizeLfFrameIsSkippedToTheNextLf) {
  const std::string big(200, 'x');
  for (const std::string& stream : {
           "<13>a\n<13>" + big + "\n<13>b\n",
           "<13>a\n<13>" + big + "\r\n<13>b",
       }) {
    for (std::size_t cut = 0; cut <= stream.size(); cut += 7) {
      TcpDeframer d(100);
      const std::string_view sv(stream);
      EXPECT_EQ(deframe(d, {sv.substr(0, cut), sv.substr(cut)}), (Frames{"<13>a", "<13>b"}))
          << cut;
      EXPECT_EQ(d.counters().oversize_drops, 1u);
      EXPECT_FALSE(d.failed());
    }
  }
}

TEST(TcpDeframerLimits, OversizeLfFrameWithoutLfAtEofDeliversNothing) {
  TcpDeframer d(10);
  EXPECT_TRUE(deframe(d, {"<13>aaaa", "aaaaaaaaaaaaaaaaaaa"}).empty());
  EXPECT_EQ(d.counters().oversize_drops, 1u);
  EXPECT_EQ(d.pending_bytes(), 0u);
}

TEST(TcpDeframerLimits, LfFrameOfExactlyMaxFrameIsKept) {
  EXPECT_EQ(deframe("<13>456789\n", 10), Frames{"<13>456789"});
}

// ---- NULs, CR, empties ------------------------------------------------------------------------

TEST(TcpDeframerTrailers, NulCrAndEmptyFramesAreSkipped) {
  EXPECT_EQ(deframe(std::string("\0\0\r\n\n<13>a\r\0\n\n\0<13>b\r\r\n"sv)),
            (Frames{"<13>a", "<13>b"}));
  // A counted frame whose body is only a trailer is not delivered.
  EXPECT_EQ(deframe("2 \r\n6 <13>c\n"), (Frames{"<13>c"}));
}

TEST(TcpDeframerTrailers, NulInsideCountedFrameIsPartOfIt) {
  // Octet counting is transparent: only trailing NULs are stripped.
  const std::string stream("7 <13>a\0b"sv);
  const Frames f = deframe(stream);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0], std::string("<13>a\0b"sv));
}

TEST(TcpDeframerReset, ResetClearsFailure) {
  TcpDeframer d(10);
  d.feed("99 x", [](std::string_view) {});
  ASSERT_TRUE(d.failed());
  d.reset();
  EXPECT_FALSE(d.failed());
  EXPECT_EQ(d.error(), TcpDeframerError::none);
  EXPECT_EQ(deframe(d, {"3 abc"}), Frames{"abc"});
}

}  // namespace
}  // namespace authwall::ingest
