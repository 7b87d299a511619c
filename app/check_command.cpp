// `authwall check [-c FILE] [--jsonl] [FILE...]` (PRODUCT.md "CLI"): what authwall would see,
// and with -c what it would ban, in a log file. Our answer to fail2ban-regex.
//
// Memory does not grow with the input: lines are read through one fixed buffer (a line longer
// than the largest syslog message is cut there and counted), output goes through one buffer
// flushed in large writes, and the summary keeps counters plus a bounded number of example
// lines. Rules are evaluated in the log's own time: each event's timestamp is the engine's `now`.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "app/commands.h"
#include "app/config.h"
#include "common/civil_time.h"
#include "ingest/syslog_parser.h"
#include "normalize/custom_patterns.h"
#include "normalize/event_json.h"
#include "normalize/normalizer.h"
#include "rules/rule_engine.h"

namespace authwall::app {
namespace {

using normalize::AuthEvent;
using normalize::EventKind;
using normalize::EventSource;
using normalize::NormalizeOutcome;

constexpr std::size_t kReadChunk = 1 << 20;
constexpr std::size_t kMaxLine = ingest::kMaxSyslogMessageLength;
constexpr std::size_t kOutputFlush = 1 << 20;
constexpr std::size_t kMaxShapeGroups = 256;    // distinct unrecognized shapes kept
constexpr std::size_t kShowShapeGroups = 20;    // shown in the summary
constexpr std::size_t kMaxShapeLength = 160;
constexpr std::size_t kMaxExampleLength = 300;
constexpr std::size_t kMaxListedBans = 50;      // listed one by one in the summary
// Progress on stderr: on a terminal every ~1M lines, in a log every ~8M lines (powers of two,
// so the per-line test is a mask).
constexpr std::uint64_t kTtyProgressEvery = 1 << 20;
constexpr std::uint64_t kLogProgressEvery = 1 << 23;

constexpr std::size_t kSources = 3;
constexpr std::size_t kKinds = 5;
constexpr std::size_t kParseErrors = 8;

struct CheckOptions {
  std::string config;
  bool jsonl = false;
  std::vector<std::string> files;
};

// "1234567" -> "1,234,567".
std::string with_commas(std::uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  const std::size_t n = digits.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string format_duration(std::int64_t s) {
  if (s > 0 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s > 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s > 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

bool is_alnum(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// The shape of an unrecognized line, so that lines differing only in addresses, ports, pids,
// queue ids, counts and user names group together: words containing a digit become '#',
// text inside <...> and [...] becomes '*'.
void line_shape(std::string_view program, std::string_view message, std::string& out) {
  out.clear();
  const auto add = [&](std::string_view text) {
    std::size_t i = 0;
    int angle = 0;
    int square = 0;
    while (i < text.size() && out.size() < kMaxShapeLength) {
      const char c = text[i];
      if (c == '<' || c == '[') {
        (c == '<' ? angle : square) += 1;
        if (angle + square == 1) {
          out += c;
          out += '*';
        }
        ++i;
        continue;
      }
      if ((c == '>' && angle > 0) || (c == ']' && square > 0)) {
        (c == '>' ? angle : square) -= 1;
        if (angle + square == 0) out += c;
        ++i;
        continue;
      }
      if (angle + square > 0) {
        ++i;
        continue;
      }
      if (is_alnum(c)) {
        std::size_t j = i;
        bool digit = false;
        while (j < text.size() && is_alnum(text[j])) {
          digit = digit || (text[j] >= '0' && text[j] <= '9');
          ++j;
        }
        if (digit) {
          if (out.empty() || out.back() != '#') out += '#';
        } else {
          out.append(text.data() + i, j - i);
        }
        i = j;
        continue;
      }
      // Keep separators, but never control bytes (the summary is printed to a terminal).
      out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) ? '?' : c;
      ++i;
    }
  };
  add(program);
  out += ": ";
  add(message);
}

// Printable copy for the terminal: control bytes become '?', long lines are cut.
std::string printable(std::string_view s) {
  std::string out;
  const std::size_t n = std::min(s.size(), kMaxExampleLength);
  out.reserve(n + 3);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7F) ? '?' : static_cast<char>(c);
  }
  if (s.size() > n) out += "...";
  return out;
}

struct ShapeGroup {
  std::uint64_t count = 0;
  EventSource source = EventSource::postfix;
  std::string example;  // "file:line: text"
};

struct ListedBan {
  std::string time;
  std::string target;
  std::string rule;
  std::int64_t duration_seconds = 0;
  std::uint32_t offence = 1;
  bool narrowed = false;
};

class Output {
 public:
  Output() { buf_.reserve(kOutputFlush + 2 * kMaxLine); }
  ~Output() { flush(); }
  std::string& buffer() { return buf_; }
  void maybe_flush() {
    if (buf_.size() >= kOutputFlush) flush();
  }
  void flush() {
    if (!buf_.empty()) {
      if (std::fwrite(buf_.data(), 1, buf_.size(), stdout) != buf_.size()) failed_ = true;
      buf_.clear();
    }
    if (std::fflush(stdout) != 0) failed_ = true;
  }
  bool failed() const { return failed_; }

 private:
  std::string buf_;
  bool failed_ = false;
};

class CheckRun {
 public:
  CheckRun(const CheckOptions& options, std::shared_ptr<const normalize::CustomPatternSet> patterns,
           std::unique_ptr<rules::RuleEngine> engine)
      : options_(options),
        normalizer_(std::move(patterns)),
        engine_(std::move(engine)),
        stderr_tty_(isatty(STDERR_FILENO) == 1) {
    carry_.reserve(kMaxLine);
    chunk_ = std::make_unique<char[]>(kReadChunk);
    decisions_.reserve(16);
    if (engine_) rule_bans_.resize(engine_->rule_count(), 0);
  }

  // Reads one input to its end. Returns false (after printing why) if it cannot be read.
  bool run(const std::string& name, int fd, UnixMicros now) {
    name_ = name;
    now_ = now;
    line_no_ = 0;
    carry_.clear();
    bool carry_truncated = false;
    for (;;) {
      const ssize_t n = ::read(fd, chunk_.get(), kReadChunk);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "authwall check: cannot read %s: %s\n", name.c_str(),
                     std::strerror(errno));
        return false;
      }
      if (n == 0) break;
      const char* p = chunk_.get();
      const char* end = p + n;
      while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        const char* stop = nl != nullptr ? nl : end;
        if (carry_.empty() && !carry_truncated && nl != nullptr) {
          // The common case: the whole line is in the chunk; no copy.
          std::string_view line(p, static_cast<std::size_t>(stop - p));
          if (line.size() > kMaxLine) {
            line = line.substr(0, kMaxLine);
            ++truncated_lines_;
          }
          process_line(line);
        } else {
          const std::size_t room = kMaxLine - carry_.size();
          const auto take = std::min(room, static_cast<std::size_t>(stop - p));
          carry_.append(p, take);
          if (take < static_cast<std::size_t>(stop - p)) carry_truncated = true;
          if (nl != nullptr) {
            if (carry_truncated) ++truncated_lines_;
            process_line(carry_);
            carry_.clear();
            carry_truncated = false;
          }
        }
        p = nl != nullptr ? nl + 1 : end;
      }
    }
    if (!carry_.empty() || carry_truncated) {
      if (carry_truncated) ++truncated_lines_;
      process_line(carry_);
      carry_.clear();
    }
    ++inputs_;
    return true;
  }

  void finish(double seconds) {
    if (stderr_tty_ && progress_shown_) std::fprintf(stderr, "\r\033[K");
    if (!options_.jsonl) print_summary(seconds);
    out_.flush();
  }

  bool output_failed() const { return out_.failed(); }

 private:
  void process_line(std::string_view line) {
    ++line_no_;
    ++lines_;
    if ((lines_ & (kTtyProgressEvery - 1)) == 0) progress();
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      ++blank_lines_;
      return;
    }
    const auto perr = ingest::parse_syslog(line, now_, msg_);
    if (perr != ingest::SyslogParseError::ok) {
      const auto idx = static_cast<std::size_t>(perr);
      if (idx < kParseErrors) ++parse_errors_[idx];
      return;
    }
    const auto result = normalizer_.normalize(msg_, event_);
    if (result.outcome == NormalizeOutcome::ignored) return;
    if (result.outcome == NormalizeOutcome::unrecognized) {
      note_unrecognized(result.source, line);
      return;
    }
    ++events_[static_cast<std::size_t>(event_.source) % kSources]
             [static_cast<std::size_t>(event_.kind) % kKinds];
    if (event_.kind == EventKind::auth_failure) attempts_ += event_.attempts;
    if (options_.jsonl) {
      std::string& out = out_.buffer();
      normalize::append_event_json(event_, out, static_cast<std::int64_t>(line_no_));
      out += '\n';
    }
    if (engine_) evaluate();
    out_.maybe_flush();
  }

  void evaluate() {
    // The log's own clock: the event's time, else the last time seen in this input.
    if (event_.has_time) last_time_ = event_.time;
    const UnixMicros now = last_time_ != 0 ? last_time_ : now_;
    decisions_.clear();
    engine_->on_event(event_, now, decisions_);
    for (const auto& d : decisions_) {
      ++bans_;
      if (d.rule_index < rule_bans_.size()) ++rule_bans_[d.rule_index];
      char tbuf[kRfc3339MaxLength];
      const std::string_view time(tbuf, format_rfc3339(d.time, tbuf));
      const std::string target = d.target.to_string();
      if (options_.jsonl) {
        std::string& out = out_.buffer();
        out += "{\"decision\":\"ban\",\"rule\":";
        normalize::append_json_string(d.rule.view(), out);
        out += ",\"target\":";
        normalize::append_json_string(target, out);
        out += ",\"time\":";
        normalize::append_json_string(time, out);
        out += ",\"duration_seconds\":";
        out += std::to_string(d.duration_seconds);
        out += ",\"offence\":";
        out += std::to_string(d.offence);
        if (d.narrowed) out += ",\"narrowed\":true";
        out += ",\"line\":";
        out += std::to_string(line_no_);
        out += "}\n";
      } else if (listed_bans_.size() < kMaxListedBans) {
        listed_bans_.push_back(ListedBan{std::string(time), target, std::string(d.rule.view()),
                                         d.duration_seconds, d.offence, d.narrowed});
      }
    }
  }

  void note_unrecognized(EventSource source, std::string_view line) {
    ++unrecognized_;
    ++unrecognized_by_source_[static_cast<std::size_t>(source) % kSources];
    line_shape(msg_.app_name, msg_.message, shape_);
    auto it = shapes_.find(shape_);
    if (it == shapes_.end()) {
      if (shapes_.size() >= kMaxShapeGroups) {
        ++unrecognized_other_shapes_;
        return;
      }
      ShapeGroup g;
      g.source = source;
      g.example = name_ + ":" + std::to_string(line_no_) + ": " + printable(line);
      it = shapes_.emplace(shape_, std::move(g)).first;
    }
    ++it->second.count;
  }

  void progress() {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = secs > 0 ? static_cast<double>(lines_) / secs : 0;
    if (stderr_tty_) {
      std::fprintf(stderr, "\r\033[Kauthwall check: %s lines, %s lines/s", with_commas(lines_).c_str(),
                   with_commas(static_cast<std::uint64_t>(rate)).c_str());
      progress_shown_ = true;
    } else if ((lines_ & (kLogProgressEvery - 1)) == 0) {
      std::fprintf(stderr, "authwall check: %s lines read\n", with_commas(lines_).c_str());
    }
  }

  void print_summary(double seconds) {
    std::string& o = out_.buffer();
    char buf[512];
    const auto line = [&](const char* fmt, auto... args) {
      std::snprintf(buf, sizeof buf, fmt, args...);
      o += buf;
    };
    line("Lines read:        %s (%zu input%s", with_commas(lines_).c_str(), inputs_,
         inputs_ == 1 ? "" : "s");
    if (seconds > 0) {
      line(", %.2f s, %s lines/s", seconds,
           with_commas(static_cast<std::uint64_t>(static_cast<double>(lines_) / seconds)).c_str());
    }
    o += ")\n";
    if (truncated_lines_ > 0) {
      line("Truncated lines:   %s (longer than %zu bytes; the first %zu were read)\n",
           with_commas(truncated_lines_).c_str(), kMaxLine, kMaxLine);
    }
    if (blank_lines_ > 0) line("Blank lines:       %s\n", with_commas(blank_lines_).c_str());

    std::uint64_t parse_total = 0;
    for (auto n : parse_errors_) parse_total += n;
    line("Parse errors:      %s\n", with_commas(parse_total).c_str());
    for (std::size_t i = 0; i < kParseErrors; ++i) {
      if (parse_errors_[i] == 0) continue;
      const auto name = ingest::to_string(static_cast<ingest::SyslogParseError>(i));
      line("  %-22.*s %12s\n", static_cast<int>(name.size()), name.data(),
           with_commas(parse_errors_[i]).c_str());
    }

    std::uint64_t event_total = 0;
    for (const auto& row : events_) {
      for (auto n : row) event_total += n;
    }
    line("Events:            %s (%s failed attempts counted by the lines)\n",
         with_commas(event_total).c_str(), with_commas(failed_attempts()).c_str());
    for (std::size_t s = 0; s < kSources; ++s) {
      for (std::size_t k = 0; k < kKinds; ++k) {
        if (events_[s][k] == 0) continue;
        const auto src = normalize::to_string(static_cast<EventSource>(s));
        const auto kind = normalize::to_string(static_cast<EventKind>(k));
        line("  %-8.*s %-20.*s %12s\n", static_cast<int>(src.size()), src.data(),
             static_cast<int>(kind.size()), kind.data(), with_commas(events_[s][k]).c_str());
      }
    }

    line("Unrecognized:      %s (lines that look like failures but match no template)\n",
         with_commas(unrecognized_).c_str());
    if (unrecognized_ > 0) {
      for (std::size_t s = 0; s < kSources; ++s) {
        if (unrecognized_by_source_[s] == 0) continue;
        const auto src = normalize::to_string(static_cast<EventSource>(s));
        line("  %-8.*s %12s\n", static_cast<int>(src.size()), src.data(),
             with_commas(unrecognized_by_source_[s]).c_str());
      }
      std::vector<const std::pair<const std::string, ShapeGroup>*> sorted;
      sorted.reserve(shapes_.size());
      for (const auto& kv : shapes_) sorted.push_back(&kv);
      std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
        return a->second.count != b->second.count ? a->second.count > b->second.count
                                                  : a->first < b->first;
      });
      line("  by shape (%zu shape%s):\n", shapes_.size(), shapes_.size() == 1 ? "" : "s");
      for (std::size_t i = 0; i < sorted.size() && i < kShowShapeGroups; ++i) {
        const auto& [shape, g] = *sorted[i];
        o += "  ";
        o += with_commas(g.count);
        o += "  ";
        o += shape;
        o += "\n      e.g. ";
        o += g.example;
        o += '\n';
      }
      if (sorted.size() > kShowShapeGroups) {
        line("  ... %zu more shapes\n", sorted.size() - kShowShapeGroups);
      }
      if (unrecognized_other_shapes_ > 0) {
        line("  ... and %s lines of further shapes (only %zu shapes are kept)\n",
             with_commas(unrecognized_other_shapes_).c_str(), kMaxShapeGroups);
      }
    }

    if (engine_) {
      line("Would-be bans:     %s (rules evaluated in the log's own time)\n",
           with_commas(bans_).c_str());
      for (std::size_t r = 0; r < rule_bans_.size(); ++r) {
        if (rule_bans_[r] == 0) continue;
        line("  %-32s %12s\n", engine_->rule_name(r).c_str(), with_commas(rule_bans_[r]).c_str());
      }
      for (const auto& b : listed_bans_) {
        line("  %s  ban %-40s for %-6s rule %s", b.time.c_str(), b.target.c_str(),
             format_duration(b.duration_seconds).c_str(), b.rule.c_str());
        if (b.offence > 1) line(" (offence %u)", b.offence);
        if (b.narrowed) o += " (address only: its prefix holds a never_ban or trusted_proxies entry)";
        o += '\n';
      }
      if (bans_ > listed_bans_.size()) {
        line("  ... %s more\n", with_commas(bans_ - listed_bans_.size()).c_str());
      }
      const auto st = engine_->stats();
      if (st.duplicate_attempts > 0 || st.never_ban_events > 0 || st.trusted_proxy_failures > 0) {
        line("  (%s attempts already counted at an earlier line, %s events from never_ban, "
             "%s failures blamed on trusted proxies)\n",
             with_commas(st.duplicate_attempts).c_str(), with_commas(st.never_ban_events).c_str(),
             with_commas(st.trusted_proxy_failures).c_str());
      }
    }
  }

  std::uint64_t failed_attempts() const {
    return attempts_;  // attempts reported by every event line (before exactly-once counting)
  }

  const CheckOptions& options_;
  normalize::Normalizer normalizer_;
  std::unique_ptr<rules::RuleEngine> engine_;
  const bool stderr_tty_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();

  Output out_;
  std::unique_ptr<char[]> chunk_;
  std::string carry_;
  std::string name_;
  UnixMicros now_ = 0;
  UnixMicros last_time_ = 0;
  std::uint64_t line_no_ = 0;

  ingest::SyslogMessage msg_;
  AuthEvent event_;
  std::vector<rules::BanDecision> decisions_;
  std::string shape_;

  std::size_t inputs_ = 0;
  std::uint64_t lines_ = 0;
  std::uint64_t blank_lines_ = 0;
  std::uint64_t truncated_lines_ = 0;
  std::array<std::uint64_t, kParseErrors> parse_errors_{};
  std::array<std::array<std::uint64_t, kKinds>, kSources> events_{};
  std::uint64_t attempts_ = 0;
  std::uint64_t unrecognized_ = 0;
  std::array<std::uint64_t, kSources> unrecognized_by_source_{};
  std::unordered_map<std::string, ShapeGroup> shapes_;
  std::uint64_t unrecognized_other_shapes_ = 0;
  std::uint64_t bans_ = 0;
  std::vector<std::uint64_t> rule_bans_;
  std::vector<ListedBan> listed_bans_;
  bool progress_shown_ = false;
};

UnixMicros wall_clock() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int run_check(const CheckOptions& options) {
  std::shared_ptr<const normalize::CustomPatternSet> patterns;
  std::unique_ptr<rules::RuleEngine> engine;
  if (!options.config.empty()) {
    LoadedConfig loaded;
    std::vector<ConfigError> errors;
    if (!load_full_config(options.config, loaded, errors)) {
      for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
      std::fprintf(stderr, "authwall check: %zu error%s in the configuration %s\n", errors.size(),
                   errors.size() == 1 ? "" : "s", options.config.c_str());
      return 2;
    }
    patterns = loaded.patterns;
    rules::RuleEngineOptions engine_options;
    // One engine for all rules here; the daemon's cap is per rule.
    engine_options.max_tracked_keys = static_cast<std::size_t>(loaded.config.max_tracked_keys) *
                                      std::max<std::size_t>(1, loaded.rules.rules.size());
    engine_options.warn = [](std::string_view text) {
      std::fprintf(stderr, "authwall check: %.*s\n", static_cast<int>(text.size()), text.data());
    };
    engine = std::make_unique<rules::RuleEngine>(loaded.rules, loaded.config.never_ban,
                                                 loaded.config.trusted_proxies, engine_options);
  }

  CheckRun run(options, std::move(patterns), std::move(engine));
  const auto start = std::chrono::steady_clock::now();
  if (options.files.empty()) {
    if (!run.run("<stdin>", STDIN_FILENO, wall_clock())) return 1;
  }
  for (const auto& file : options.files) {
    const bool is_stdin = file == "-";
    const int fd = is_stdin ? STDIN_FILENO : ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::fprintf(stderr, "authwall check: cannot open %s: %s\n", file.c_str(), std::strerror(errno));
      return 1;
    }
    // RFC 3164 timestamps carry no year: infer it relative to when the file was last written.
    UnixMicros now = wall_clock();
    struct stat st {};
    if (!is_stdin && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      now = static_cast<UnixMicros>(st.st_mtim.tv_sec) * kMicrosPerSecond + st.st_mtim.tv_nsec / 1000;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    const bool ok = run.run(is_stdin ? "<stdin>" : file, fd, now);
    if (!is_stdin) ::close(fd);
    if (!ok) return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.finish(seconds);
  if (run.output_failed()) {
    std::fprintf(stderr, "authwall check: cannot write the output: %s\n", std::strerror(errno));
    return 1;
  }
  return 0;
}

}  // namespace

void register_check_command(CLI::App& cli, CommandAction& action) {
  auto* cmd = cli.add_subcommand(
      "check", "Show what authwall recognises in log files (or stdin) and, with -c, the bans "
               "its rules would issue");
  auto options = std::make_shared<CheckOptions>();
  cmd->add_option("-c,--config", options->config,
                  "configuration file: use its custom patterns and evaluate its rules");
  cmd->add_flag("--jsonl", options->jsonl, "print one JSON object per event (and per ban)");
  cmd->add_option("files", options->files, "log files ('-' or none: stdin)");
  cmd->callback([&action, options] { action = [options] { return run_check(*options); }; });
}

}  // namespace authwall::app
