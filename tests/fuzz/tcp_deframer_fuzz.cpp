// libFuzzer target for TcpDeframer. The first bytes choose the maximum frame size and how the
// rest is cut into reads; the frames (and the failure state) must not depend on the cuts, every
// frame must fit the maximum, and each frame is handed to the parser as the daemon would.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/syslog_parser.h"
#include "ingest/tcp_deframer.h"

namespace {

using namespace authwall::ingest;

struct Run {
  std::vector<std::string> frames;
  bool failed = false;
  TcpDeframerCounters counters;
};

Run run(std::string_view stream, std::size_t max_frame, const std::uint8_t* cuts,
        std::size_t ncuts) {
  Run r;
  TcpDeframer d(max_frame);
  const auto on_frame = [&](std::string_view f) {
    if (f.empty() || f.size() > max_frame) std::abort();
    const char last = f.back();
    if (last == '\n' || last == '\r' || last == '\0') std::abort();
    r.frames.emplace_back(f);
    authwall::ingest::SyslogMessage m;
    (void)parse_syslog(f, 0, m);
  };
  std::size_t pos = 0;
  for (std::size_t i = 0; i < ncuts && pos < stream.size(); ++i) {
    const std::size_t len = std::min<std::size_t>(cuts[i] % 64, stream.size() - pos);
    // Each read is copied into its own buffer, as a socket read would be, so a view that
    // outlived its read would be caught by ASan.
    const std::string chunk(stream.substr(pos, len));
    d.feed(chunk, on_frame);
    pos += len;
  }
  if (pos < stream.size()) {
    const std::string chunk(stream.substr(pos));
    d.feed(chunk, on_frame);
  }
  d.finish(on_frame);
  r.failed = d.failed();
  r.counters = d.counters();
  if (d.pending_bytes() != 0) std::abort();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // Maximum frame: small values exercise the oversize and lying-count paths.
  const std::size_t max_frame = data[0] < 128 ? 1 + data[0] : kMaxSyslogMessageLength;
  const std::size_t ncuts = data[1] % 16;
  if (size < 2 + ncuts) return 0;
  const std::uint8_t* cuts = data + 2;
  const std::string_view stream(reinterpret_cast<const char*>(data + 2 + ncuts),
                                size - 2 - ncuts);
  const Run whole = run(stream, max_frame, nullptr, 0);
  const Run split = run(stream, max_frame, cuts, ncuts);
  if (whole.frames != split.frames || whole.failed != split.failed ||
      whole.counters.oversize_drops != split.counters.oversize_drops ||
      whole.counters.truncated != split.counters.truncated) {
    std::abort();
  }
  return 0;
}
