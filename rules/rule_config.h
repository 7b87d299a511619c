#pragma once
// Rule files (PRODUCT.md "Configuration", docs/rules.md) loaded into plain structs.
//
// Loading is the only place exceptions are used (yaml-cpp throws); every function here catches
// them and reports problems as ConfigError values with file:line:col, collecting all of them
// rather than stopping at the first. Unknown keys are errors. The RuleSet is then handed to the
// RuleEngine constructor, which compiles it into runtime tables.
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/config_error.h"
#include "common/ip_address.h"
#include "normalize/auth_event.h"
#include "rules/ban_decision.h"

namespace authwall::rules {

// A threshold up to this is counted exactly (a ring of attempt times per key); a larger one
// with 32 time buckets (docs/rules.md "Windows"). `distinct: user` is limited to it.
inline constexpr std::uint32_t kMaxExactThreshold = 64;
inline constexpr std::uint32_t kMaxThreshold = 65535;
// Longest ban any escalation can produce (also the `max` when a rule gives none).
inline constexpr std::int64_t kMaxBanSeconds = 365LL * 86400;

// The string-valued event fields a rule can match on.
enum class MatchField : std::uint8_t { service, reason, user, mechanism, program, host, session };
inline constexpr std::size_t kMatchFieldCount = 7;
std::string_view to_string(MatchField f) noexcept;
// The event's value of a match field; `is_null` when the field is absent (user: no user= at
// all; the others: empty).
inline std::string_view field_value(const normalize::AuthEvent& e, MatchField f, bool& is_null) noexcept {
  std::string_view v;
  switch (f) {
    case MatchField::service: v = e.service; break;
    case MatchField::reason: v = e.reason; break;
    case MatchField::user:
      is_null = !e.has_user;
      return e.user;
    case MatchField::mechanism: v = e.mechanism.view(); break;
    case MatchField::program: v = e.program; break;
    case MatchField::host: v = e.host; break;
    case MatchField::session: v = e.session.view(); break;
  }
  is_null = v.empty();
  return v;
}

// a == b for the short strings rules compare (service, reason, user names), inline: whole
// 8-byte words and an overlapping last word (or two 4-byte halves, or three bytes), all
// within both strings, instead of a call to memcmp.
inline bool same_text(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  const char* p = a.data();
  const char* q = b.data();
  const auto word = [](const char* x) {
    std::uint64_t w;
    std::memcpy(&w, x, 8);
    return w;
  };
  const auto half = [](const char* x) {
    std::uint32_t w;
    std::memcpy(&w, x, 4);
    return w;
  };
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 < n; i += 8) {
      if (word(p + i) != word(q + i)) return false;
    }
    return word(p + n - 8) == word(q + n - 8);
  }
  if (n >= 4) return half(p) == half(q) && half(p + n - 4) == half(q + n - 4);
  return n == 0 || (p[0] == q[0] && p[n / 2] == q[n / 2] && p[n - 1] == q[n - 1]);
}

// The event's value must equal one of `values` (exactly, case-sensitive), or be null when
// `allow_null` (a YAML null `~` in the list).
struct FieldCondition {
  std::vector<std::string> values;
  bool allow_null = false;

  // Whether an event's value of the field (see field_value) satisfies the condition.
  bool holds(std::string_view v, bool is_null) const noexcept {
    if (is_null) return allow_null;
    for (const auto& want : values) {
      if (same_text(want, v)) return true;
    }
    return false;
  }  friend bool operator==(const FieldCondition&, const FieldCondition&) = default;
};

// True when `ip` lies in one of `prefixes`.
inline bool in_any(const std::vector<IpPrefix>& prefixes, const IpAddress& ip) noexcept {
  for (const auto& p : prefixes) {
    if (p.contains(ip)) return true;
  }
  return false;
}

// All present conditions must hold (AND); within one condition any value may match (OR).
struct MatchSpec {
  std::uint32_t kind_mask = 0;    // bit (1 << EventKind); 0 = any kind
  std::uint32_t source_mask = 0;  // bit (1 << EventSource); 0 = any source
  std::array<std::optional<FieldCondition>, kMatchFieldCount> fields;
  std::vector<IpPrefix> ip;       // client address within one of these; empty = any

  bool matches(const normalize::AuthEvent& e) const noexcept;
  // The same conditions, written the same way (rules with equal matches may share a table).
  friend bool operator==(const MatchSpec&, const MatchSpec&) = default;
};

struct BanSpec {
  std::int64_t duration_seconds = 0;
  double factor = 1.0;                     // escalation per earlier ban of the same target
  std::int64_t max_seconds = kMaxBanSeconds;
};

struct RuleSpec {
  std::string name;
  std::string file;  // where it was defined, for messages
  int line = 0;
  int column = 0;
  MatchSpec match;
  std::optional<MatchSpec> exclude;  // `match: { not: {...} }`: events matching it are skipped
  KeyKind key = KeyKind::ip;
  int prefix_v4 = 32;
  int prefix_v6 = 64;
  std::int64_t window_seconds = 0;
  std::uint32_t threshold = 0;
  bool distinct_user = false;     // `distinct: user`
  bool reset_on_success = false;
  BanSpec ban;
};

struct RuleSet {
  std::vector<RuleSpec> rules;
};

// Parses the document in `root` (a map with `rules:`) and appends its rules to `out`. `file`
// labels error messages. Returns false if any error was added.
bool parse_rule_document(const YAML::Node& root, const std::string& file, RuleSet& out,
                         std::vector<ConfigError>& errors);
// Same, from YAML text (tests, inline rules).
bool parse_rule_text(std::string_view yaml, const std::string& file, RuleSet& out,
                     std::vector<ConfigError>& errors);
// Reads and parses one file.
bool load_rule_file(const std::string& path, RuleSet& out, std::vector<ConfigError>& errors);
// Loads every file in order into `out`; rule names must be unique across all of them.
// Returns false if any error was found (then `out` must not be used).
bool load_rule_files(const std::vector<std::string>& paths, RuleSet& out,
                     std::vector<ConfigError>& errors);

}  // namespace authwall::rules
