#include "normalize/custom_patterns.h"

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>

#include "common/ip_address.h"

namespace authwall::normalize {
namespace {

// Enough for any sensible pattern; a fixed bound keeps the submatch array on the stack.
constexpr int kMaxCaptureGroups = 16;

constexpr std::array<EventKind, 5> kAllKinds{EventKind::auth_failure, EventKind::auth_success,
                                             EventKind::protocol_abuse, EventKind::rejected,
                                             EventKind::no_auth_disconnect};

bool parse_port(std::string_view text, std::int32_t& out) noexcept {
  if (text.empty() || text.size() > 5) return false;
  std::int32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v > 65535) return false;
  out = v;
  return true;
}

ConfigError error_at(const CustomPatternSpec& spec, std::string message) {
  std::string what = spec.name.empty() ? "pattern" : "pattern '" + spec.name + "'";
  return ConfigError{spec.file, spec.line, spec.column, what + ": " + message};
}

}  // namespace

bool parse_event_kind(std::string_view text, EventKind& out) noexcept {
  for (EventKind k : kAllKinds) {
    if (to_string(k) == text) {
      out = k;
      return true;
    }
  }
  return false;
}

struct CustomPatternSet::Compiled {
  std::string program;  // without the trailing '*'
  bool prefix = false;
  std::unique_ptr<RE2> re;
  int groups = 0;  // number of capturing groups
  int ip_group = -1;
  int user_group = -1;
  int port_group = -1;
  int service_group = -1;
  EventKind kind = EventKind::auth_failure;
  std::string reason;
  std::string service;

  bool applies_to(std::string_view app_name) const noexcept {
    return prefix ? app_name.substr(0, program.size()) == program : app_name == program;
  }
};

CustomPatternSet::CustomPatternSet() = default;
CustomPatternSet::~CustomPatternSet() = default;

bool CustomPatternSet::empty() const noexcept { return patterns_.empty(); }
std::size_t CustomPatternSet::size() const noexcept { return patterns_.size(); }

std::shared_ptr<const CustomPatternSet> CustomPatternSet::build(
    const std::vector<CustomPatternSpec>& specs, std::vector<ConfigError>& errors) {
  const std::size_t errors_before = errors.size();
  std::shared_ptr<CustomPatternSet> set(new CustomPatternSet());
  for (const auto& spec : specs) {
    auto c = std::make_unique<Compiled>();
    bool ok = true;
    std::string_view program = spec.program;
    if (!program.empty() && program.back() == '*') {
      c->prefix = true;
      program.remove_suffix(1);
    }
    c->program = std::string(program);
    if (c->program.empty() && !c->prefix) {
      errors.push_back(error_at(spec, "program must name the syslog tag the pattern applies to"));
      ok = false;
    }
    if (!parse_event_kind(spec.kind, c->kind)) {
      errors.push_back(error_at(spec, "unknown kind '" + spec.kind +
                                          "' (expected auth_failure, auth_success, "
                                          "protocol_abuse, rejected or no_auth_disconnect)"));
      ok = false;
    }
    if (spec.reason.empty()) {
      errors.push_back(error_at(spec, "reason must not be empty"));
      ok = false;
    }
    c->reason = spec.reason;
    c->service = spec.service;

    RE2::Options options;
    options.set_log_errors(false);
    c->re = std::make_unique<RE2>(spec.regex, options);
    if (!c->re->ok()) {
      errors.push_back(error_at(spec, "invalid regex: " + c->re->error()));
      continue;
    }
    c->groups = c->re->NumberOfCapturingGroups();
    if (c->groups > kMaxCaptureGroups) {
      errors.push_back(error_at(spec, "too many capturing groups (at most " +
                                          std::to_string(kMaxCaptureGroups) + ")"));
      ok = false;
    }
    for (const auto& [name, index] : c->re->NamedCapturingGroups()) {
      if (name == "ip") {
        c->ip_group = index;
      } else if (name == "user") {
        c->user_group = index;
      } else if (name == "port") {
        c->port_group = index;
      } else if (name == "service") {
        c->service_group = index;
      } else {
        errors.push_back(error_at(spec, "unknown group name '" + name +
                                            "' (allowed: ip, user, port, service)"));
        ok = false;
      }
    }
    if (c->ip_group < 0) {
      errors.push_back(error_at(spec, "regex has no (?P<ip>...) group: the client address is "
                                      "required"));
      ok = false;
    }
    if (ok) set->patterns_.push_back(std::move(c));
  }
  if (errors.size() != errors_before) return nullptr;
  return set;
}

NormalizeResult CustomPatternSet::match(const ingest::SyslogMessage& msg,
                                        AuthEvent& out) const noexcept {
  std::array<re2::StringPiece, kMaxCaptureGroups + 1> sub;
  const re2::StringPiece text(msg.message.data(), msg.message.size());
  for (const auto& p : patterns_) {
    if (!p->applies_to(msg.app_name)) continue;
    if (!p->re->Match(text, 0, text.size(), RE2::UNANCHORED, sub.data(), p->groups + 1)) continue;
    const auto group = [&](int index) -> std::string_view {
      if (index < 0 || sub[static_cast<std::size_t>(index)].data() == nullptr) return {};
      const auto& s = sub[static_cast<std::size_t>(index)];
      return {s.data(), s.size()};
    };
    out = AuthEvent{};
    if (!IpAddress::parse(group(p->ip_group), out.ip)) {
      return {NormalizeOutcome::unrecognized, EventSource::custom};
    }
    out.has_time = msg.has_time;
    out.time = msg.time;
    out.host = msg.hostname;
    out.program = msg.app_name;
    out.source = EventSource::custom;
    out.kind = p->kind;
    out.reason = p->reason;
    out.service = p->service;
    if (p->service_group >= 0 && !group(p->service_group).empty()) {
      out.service = group(p->service_group);
    }
    if (p->user_group >= 0 && sub[static_cast<std::size_t>(p->user_group)].data() != nullptr) {
      out.has_user = true;
      out.user = group(p->user_group);
    }
    if (p->port_group >= 0) {
      std::int32_t port = -1;
      if (parse_port(group(p->port_group), port)) out.port = port;
    }
    return {NormalizeOutcome::event, EventSource::custom};
  }
  return {NormalizeOutcome::ignored, EventSource::custom};
}

bool parse_custom_patterns(const YAML::Node& node, const std::string& file,
                           std::vector<CustomPatternSpec>& out, std::vector<ConfigError>& errors) {
  const std::size_t errors_before = errors.size();
  const auto err = [&](const YAML::Node& at, std::string message) {
    const YAML::Mark m = at.Mark();
    errors.push_back(ConfigError{file, m.line >= 0 ? m.line + 1 : 0,
                                 m.column >= 0 ? m.column + 1 : 0, std::move(message)});
  };
  if (node.IsNull()) return true;  // `patterns:` with nothing under it
  if (!node.IsSequence()) {
    err(node, "patterns must be a list");
    return false;
  }
  for (const auto& item : node) {
    if (!item.IsMap()) {
      err(item, "each entry of patterns must be a mapping with program and regex");
      continue;
    }
    CustomPatternSpec spec;
    spec.file = file;
    const YAML::Mark m = item.Mark();
    spec.line = m.line >= 0 ? m.line + 1 : 0;
    spec.column = m.column >= 0 ? m.column + 1 : 0;
    const std::size_t entry_errors = errors.size();
    bool has_program_key = false;
    bool has_regex_key = false;
    for (const auto& kv : item) {
      const std::string key = kv.first.Scalar();
      std::string* target = nullptr;
      if (key == "name") {
        target = &spec.name;
      } else if (key == "program") {
        target = &spec.program;
        has_program_key = true;
      } else if (key == "regex") {
        target = &spec.regex;
        has_regex_key = true;
      } else if (key == "kind") {
        target = &spec.kind;
      } else if (key == "reason") {
        target = &spec.reason;
      } else if (key == "service") {
        target = &spec.service;
      } else {
        err(kv.first, "unknown key '" + key +
                          "' in patterns entry (expected one of: name, program, regex, kind, "
                          "reason, service)");
        continue;
      }
      if (!kv.second.IsScalar()) {
        err(kv.second, "patterns entry key '" + key + "' must be a string");
        continue;
      }
      *target = kv.second.Scalar();
      if (key == "regex") {
        // Point regex errors at the regex itself rather than the start of the entry.
        const YAML::Mark rm = kv.second.Mark();
        spec.line = rm.line >= 0 ? rm.line + 1 : spec.line;
        spec.column = rm.column >= 0 ? rm.column + 1 : spec.column;
      }
    }
    if (!has_program_key) err(item, "patterns entry has no program");
    if (!has_regex_key) err(item, "patterns entry has no regex");
    if (errors.size() == entry_errors) out.push_back(std::move(spec));
  }
  return errors.size() == errors_before;
}

}  // namespace authwall::normalize
