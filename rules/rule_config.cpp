#include "rules/rule_config.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "common/duration.h"

namespace authwall::rules {

std::string_view to_string(KeyKind k) noexcept {
  switch (k) {
    case KeyKind::ip: return "ip";
    case KeyKind::user: return "user";
    case KeyKind::ip_user: return "ip+user";
  }
  return "ip";
}

std::string_view to_string(MatchField f) noexcept {
  switch (f) {
    case MatchField::service: return "service";
    case MatchField::reason: return "reason";
    case MatchField::user: return "user";
    case MatchField::mechanism: return "mechanism";
    case MatchField::program: return "program";
    case MatchField::host: return "host";
    case MatchField::session: return "session";
  }
  return "";
}


namespace {

using normalize::AuthEvent;
using normalize::EventKind;
using normalize::EventSource;


constexpr EventKind kAllKinds[] = {EventKind::auth_failure, EventKind::auth_success,
                                   EventKind::protocol_abuse, EventKind::rejected,
                                   EventKind::no_auth_disconnect};
constexpr EventSource kAllSources[] = {EventSource::postfix, EventSource::dovecot,
                                       EventSource::custom};

// Collects errors for one file, positioned by yaml-cpp marks (0-based there, 1-based here).
class ErrorSink {
 public:
  ErrorSink(const std::string& file, std::vector<ConfigError>& errors)
      : file_(file), errors_(errors) {}
  void add(const YAML::Mark& mark, std::string message) {
    ConfigError e;
    e.file = file_;
    if (mark.line >= 0) {
      e.line = mark.line + 1;
      e.column = mark.column + 1;
    }
    e.message = std::move(message);
    errors_.push_back(std::move(e));
    ++count_;
  }
  void add(const YAML::Node& node, std::string message) { add(node.Mark(), std::move(message)); }
  int count() const { return count_; }
  const std::string& file() const { return file_; }

 private:
  const std::string& file_;
  std::vector<ConfigError>& errors_;
  int count_ = 0;
};

// Unknown keys are errors; returns the value nodes of the known ones by name.
bool check_map(const YAML::Node& node, std::string_view what,
               std::initializer_list<std::string_view> known, ErrorSink& sink) {
  if (!node.IsMap()) {
    sink.add(node, std::string(what) + " must be a mapping");
    return false;
  }
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {  // `? [a, b]: ...` — YAML allows it, we do not
      sink.add(kv.first, std::string(what) + ": a key must be a plain name, not a list or mapping");
      continue;
    }
    const std::string key = kv.first.Scalar();
    bool ok = false;
    for (auto k : known) ok = ok || key == k;
    if (!ok) {
      std::string list;
      for (auto k : known) {
        if (!list.empty()) list += ", ";
        list += k;
      }
      sink.add(kv.first, "unknown key '" + key + "' in " + std::string(what) + " (expected one of: " +
                             list + ")");
    }
  }
  return true;
}

std::optional<std::int64_t> parse_int(const YAML::Node& node, std::int64_t lo, std::int64_t hi,
                                      std::string_view what, ErrorSink& sink) {
  if (!node.IsScalar()) {
    sink.add(node, std::string(what) + " must be an integer");
    return std::nullopt;
  }
  const std::string& s = node.Scalar();
  std::int64_t v = 0;
  // At most 12 digits (fits easily); longer text is refused before any arithmetic.
  bool ok = !s.empty() && s.size() <= 12;
  for (std::size_t i = 0; ok && i < s.size(); ++i) {
    const char c = s[i];
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    v = v * 10 + (c - '0');
  }
  if (!ok || v < lo || v > hi) {
    sink.add(node, std::string(what) + " must be an integer from " + std::to_string(lo) + " to " +
                       std::to_string(hi) + ", got '" + s + "'");
    return std::nullopt;
  }
  return v;
}

std::optional<std::int64_t> parse_duration(const YAML::Node& node, std::string_view what,
                                           ErrorSink& sink) {
  if (node.IsScalar()) {
    if (auto d = parse_duration_seconds(node.Scalar())) return d;
  }
  sink.add(node, std::string(what) + " must be a duration such as 90s, 10m, 1h, 7d (got '" +
                     (node.IsScalar() ? node.Scalar() : std::string("non-scalar")) + "')");
  return std::nullopt;
}

// A scalar or a list of scalars; YAML nulls are reported through `saw_null`.
bool scalar_list(const YAML::Node& node, std::string_view what, ErrorSink& sink,
                 std::vector<std::pair<std::string, YAML::Node>>& out, bool& saw_null) {
  auto one = [&](const YAML::Node& n) {
    if (n.IsNull()) {
      saw_null = true;
    } else if (n.IsScalar()) {
      out.emplace_back(n.Scalar(), n);
    } else {
      sink.add(n, std::string(what) + ": expected a string or a list of strings");
      return false;
    }
    return true;
  };
  if (node.IsSequence()) {
    if (node.size() == 0) {
      sink.add(node, std::string(what) + ": empty list matches nothing");
      return false;
    }
    bool ok = true;
    for (const auto& n : node) ok = one(n) && ok;
    return ok;
  }
  return one(node);
}

void parse_match(const YAML::Node& node, bool allow_not, MatchSpec& out,
                 std::optional<MatchSpec>& exclude, ErrorSink& sink) {
  static const std::initializer_list<std::string_view> kWithNot = {
      "kind", "source", "service", "reason", "user", "mechanism", "program", "host", "session", "ip",
      "not"};
  static const std::initializer_list<std::string_view> kWithoutNot = {
      "kind", "source", "service", "reason", "user", "mechanism", "program", "host", "session", "ip"};
  if (!check_map(node, allow_not ? "match" : "match.not", allow_not ? kWithNot : kWithoutNot,
                 sink)) {
    return;
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& value = kv.second;
    if (key == "not") {
      if (!allow_not) continue;  // reported by check_map
      MatchSpec ex;
      std::optional<MatchSpec> unused;
      parse_match(value, false, ex, unused, sink);
      exclude = std::move(ex);
      continue;
    }
    std::vector<std::pair<std::string, YAML::Node>> items;
    bool saw_null = false;
    const std::string what = "match." + key;
    if (!scalar_list(value, what, sink, items, saw_null)) continue;
    if (key == "kind" || key == "source") {
      if (saw_null) sink.add(value, what + " cannot be null");
      for (const auto& [text, n] : items) {
        bool found = false;
        if (key == "kind") {
          for (auto k : kAllKinds) {
            if (normalize::to_string(k) == text) {
              out.kind_mask |= 1u << static_cast<unsigned>(k);
              found = true;
            }
          }
          if (!found) {
            sink.add(n, "unknown kind '" + text +
                            "' (expected auth_failure, auth_success, protocol_abuse, rejected or "
                            "no_auth_disconnect)");
          }
        } else {
          for (auto s : kAllSources) {
            if (normalize::to_string(s) == text) {
              out.source_mask |= 1u << static_cast<unsigned>(s);
              found = true;
            }
          }
          if (!found) sink.add(n, "unknown source '" + text + "' (expected postfix, dovecot or custom)");
        }
      }
      continue;
    }
    if (key == "ip") {
      if (saw_null) sink.add(value, what + " cannot be null");
      for (const auto& [text, n] : items) {
        IpPrefix p;
        if (!IpPrefix::parse(text, p)) {
          sink.add(n, "match.ip: '" + text + "' is not an address or prefix (host bits must be zero)");
        } else {
          out.ip.push_back(p);
        }
      }
      continue;
    }
    for (std::size_t f = 0; f < kMatchFieldCount; ++f) {
      if (to_string(static_cast<MatchField>(f)) != key) continue;
      FieldCondition cond;
      cond.allow_null = saw_null;
      for (auto& item : items) cond.values.push_back(std::move(item.first));
      out.fields[f] = std::move(cond);
    }
  }
}

bool valid_rule_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxRuleNameLength) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

void parse_rule(const YAML::Node& node, ErrorSink& sink, RuleSet& out) {
  const int before = sink.count();
  if (!check_map(node, "rule",
                 {"name", "description", "match", "key", "prefix", "window", "threshold",
                  "distinct", "reset_on_success", "ban"},
                 sink)) {
    return;
  }
  RuleSpec rule;
  rule.file = sink.file();
  rule.line = node.Mark().line + 1;
  rule.column = node.Mark().column + 1;

  if (const auto n = node["name"]; !n) {
    sink.add(node, "rule has no 'name'");
  } else if (!n.IsScalar() || !valid_rule_name(n.Scalar())) {
    sink.add(n, "rule name must be 1 to 63 characters of letters, digits, '-', '_' and '.'");
  } else {
    rule.name = n.Scalar();
  }
  if (const auto n = node["description"]; n && !n.IsScalar()) {
    sink.add(n, "description must be a string");
  }
  if (const auto n = node["match"]; !n) {
    sink.add(node, "rule '" + rule.name + "' has no 'match' (use e.g. match: { kind: auth_failure })");
  } else {
    parse_match(n, true, rule.match, rule.exclude, sink);
  }
  if (const auto n = node["key"]) {
    const std::string k = n.IsScalar() ? n.Scalar() : "";
    if (k == "ip") {
      rule.key = KeyKind::ip;
    } else if (k == "user") {
      rule.key = KeyKind::user;
    } else if (k == "ip+user") {
      rule.key = KeyKind::ip_user;
    } else {
      sink.add(n, "key must be ip, user or ip+user (got '" + k + "')");
    }
  }
  if (const auto n = node["prefix"]) {
    if (check_map(n, "prefix", {"ipv4", "ipv6"}, sink)) {
      if (const auto v = n["ipv4"]) {
        if (auto x = parse_int(v, 8, 32, "prefix.ipv4", sink)) rule.prefix_v4 = static_cast<int>(*x);
      }
      if (const auto v = n["ipv6"]) {
        if (auto x = parse_int(v, 16, 128, "prefix.ipv6", sink)) rule.prefix_v6 = static_cast<int>(*x);
      }
    }
  }
  if (const auto n = node["window"]; !n) {
    sink.add(node, "rule '" + rule.name + "' has no 'window'");
  } else if (auto d = parse_duration(n, "window", sink)) {
    if (*d > kMaxBanSeconds) {
      sink.add(n, "window must be at most 365d");
    }
    rule.window_seconds = *d;
  }
  if (const auto n = node["distinct"]) {
    if (n.IsScalar() && n.Scalar() == "user") {
      rule.distinct_user = true;
    } else {
      sink.add(n, "distinct must be 'user' (the only field counted by distinct values)");
    }
  }
  if (rule.distinct_user && rule.key != KeyKind::ip) {
    sink.add(node["distinct"], "distinct: user needs key: ip (per user or per ip+user there is only one name)");
  }
  if (const auto n = node["threshold"]; !n) {
    sink.add(node, "rule '" + rule.name + "' has no 'threshold'");
  } else {
    const std::int64_t hi = rule.distinct_user ? kMaxExactThreshold : kMaxThreshold;
    if (auto x = parse_int(n, 1, hi, rule.distinct_user ? "threshold (with distinct)" : "threshold", sink)) {
      rule.threshold = static_cast<std::uint32_t>(*x);
    }
  }
  if (const auto n = node["reset_on_success"]) {
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
      sink.add(n, "reset_on_success must be true or false");
    }
    rule.reset_on_success = v;
  }
  if (const auto n = node["ban"]; !n) {
    sink.add(node, "rule '" + rule.name + "' has no 'ban' (e.g. ban: { duration: 1h })");
  } else if (check_map(n, "ban", {"duration", "factor", "max"}, sink)) {
    if (const auto d = n["duration"]; !d) {
      sink.add(n, "ban has no 'duration'");
    } else if (auto x = parse_duration(d, "ban.duration", sink)) {
      if (*x > kMaxBanSeconds) {
        sink.add(d, "ban.duration must be at most 365d");
      }
      rule.ban.duration_seconds = *x;
    }
    if (const auto f = n["factor"]) {
      double v = 0;
      if (!f.IsScalar() || !YAML::convert<double>::decode(f, v) || !std::isfinite(v) || v < 1.0 ||
          v > 1000.0) {
        sink.add(f, "ban.factor must be a number from 1 to 1000");
      } else {
        rule.ban.factor = v;
      }
    }
    if (const auto m = n["max"]) {
      if (auto x = parse_duration(m, "ban.max", sink)) {
        if (*x > kMaxBanSeconds) {
          sink.add(m, "ban.max must be at most 365d");
        } else if (rule.ban.duration_seconds > 0 && *x < rule.ban.duration_seconds) {
          sink.add(m, "ban.max must not be shorter than ban.duration");
        } else {
          rule.ban.max_seconds = *x;
        }
      }
    }
  }
  if (sink.count() == before) out.rules.push_back(std::move(rule));
}

}  // namespace

bool MatchSpec::matches(const AuthEvent& e) const noexcept {
  if (kind_mask != 0 && (kind_mask & (1u << static_cast<unsigned>(e.kind))) == 0) return false;
  if (source_mask != 0 && (source_mask & (1u << static_cast<unsigned>(e.source))) == 0) return false;
  for (std::size_t f = 0; f < kMatchFieldCount; ++f) {
    const auto& cond = fields[f];
    if (!cond) continue;
    bool is_null = false;
    const std::string_view v = field_value(e, static_cast<MatchField>(f), is_null);
    if (!cond->holds(v, is_null)) return false;
  }
  return ip.empty() || in_any(ip, e.ip);
}

bool parse_rule_document(const YAML::Node& root, const std::string& file, RuleSet& out,
                         std::vector<ConfigError>& errors) {
  ErrorSink sink(file, errors);
  try {
    if (!root || root.IsNull()) {
      sink.add(YAML::Mark::null_mark(), "empty rule file (expected 'rules:')");
      return false;
    }
    if (!check_map(root, "rule file", {"rules"}, sink)) return false;
    const auto rules = root["rules"];
    if (!rules) {
      sink.add(root, "rule file has no 'rules:' list");
    } else if (rules.IsNull()) {
      // `rules:` with nothing under it: an intentionally empty file.
    } else if (!rules.IsSequence()) {
      sink.add(rules, "'rules' must be a list");
    } else {
      for (const auto& r : rules) parse_rule(r, sink, out);
    }
  } catch (const YAML::Exception& ex) {
    sink.add(ex.mark, "invalid YAML: " + ex.msg);
  }
  return sink.count() == 0;
}

bool parse_rule_text(std::string_view yaml, const std::string& file, RuleSet& out,
                     std::vector<ConfigError>& errors) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& ex) {
    ErrorSink sink(file, errors);
    sink.add(ex.mark, "invalid YAML: " + ex.msg);
    return false;
  }
  return parse_rule_document(root, file, out, errors);
}

bool load_rule_file(const std::string& path, RuleSet& out, std::vector<ConfigError>& errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(ConfigError{path, 0, 0, "cannot read rule file"});
    return false;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_rule_text(buf.str(), path, out, errors);
}

bool load_rule_files(const std::vector<std::string>& paths, RuleSet& out,
                     std::vector<ConfigError>& errors) {
  const std::size_t before = errors.size();
  for (const auto& path : paths) load_rule_file(path, out, errors);
  std::unordered_map<std::string, const RuleSpec*> seen;
  for (const auto& rule : out.rules) {
    auto [it, inserted] = seen.emplace(rule.name, &rule);
    if (!inserted) {
      const RuleSpec& first = *it->second;
      errors.push_back(ConfigError{rule.file, rule.line, rule.column,
                                   "duplicate rule name '" + rule.name + "' (first defined at " +
                                       first.file + ":" + std::to_string(first.line) + ":" +
                                       std::to_string(first.column) + ")"});
    }
  }
  return errors.size() == before;
}

}  // namespace authwall::rules
