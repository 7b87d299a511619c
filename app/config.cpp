#include "app/config.h"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "common/duration.h"
#include "ingest/syslog_parser.h"

namespace authwall::app {
namespace {

namespace fs = std::filesystem;

// Collects errors against one file; yaml-cpp marks are 0-based.
class ErrorSink {
 public:
  ErrorSink(std::string file, std::vector<ConfigError>& errors)
      : file_(std::move(file)), errors_(errors) {}
  void at(const YAML::Node& node, std::string message) {
    const YAML::Mark m = node.Mark();
    errors_.push_back(ConfigError{file_, m.line >= 0 ? m.line + 1 : 0,
                                  m.column >= 0 ? m.column + 1 : 0, std::move(message)});
  }
  void at_mark(const YAML::Mark& m, std::string message) {
    errors_.push_back(ConfigError{file_, m.line + 1, m.column + 1, std::move(message)});
  }
  void file_level(std::string message) {
    errors_.push_back(ConfigError{file_, 0, 0, std::move(message)});
  }
  std::size_t count() const { return errors_.size(); }

 private:
  std::string file_;
  std::vector<ConfigError>& errors_;
};

// Rejects keys of `map` not in `allowed`; returns false if `map` is not a mapping.
bool check_keys(const YAML::Node& map, std::string_view where,
                std::initializer_list<std::string_view> allowed, ErrorSink& sink) {
  if (!map.IsMap()) {
    sink.at(map, std::string(where) + " must be a mapping");
    return false;
  }
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {  // `? [a, b]: ...` — YAML allows it, we do not
      sink.at(kv.first, std::string(where) + ": a key must be a plain name, not a list or mapping");
      continue;
    }
    const std::string key = kv.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (auto a : allowed) {
        if (!list.empty()) list += ", ";
        list += a;
      }
      sink.at(kv.first, "unknown key '" + key + "' in " + std::string(where) + " (expected one of: " +
                            list + ")");
    }
  }
  return true;
}

bool get_string(const YAML::Node& node, std::string_view what, std::string& out, ErrorSink& sink) {
  if (!node.IsScalar()) {
    sink.at(node, std::string(what) + " must be a string");
    return false;
  }
  out = node.Scalar();
  return true;
}

std::vector<std::string> get_string_list(const YAML::Node& node, std::string_view what,
                                         ErrorSink& sink) {
  std::vector<std::string> out;
  if (!node.IsSequence()) {
    sink.at(node, std::string(what) + " must be a list");
    return out;
  }
  for (const auto& item : node) {
    std::string s;
    if (get_string(item, std::string(what) + " entry", s, sink)) out.push_back(std::move(s));
  }
  return out;
}

std::vector<IpPrefix> get_prefix_list(const YAML::Node& node, std::string_view what,
                                      ErrorSink& sink) {
  std::vector<IpPrefix> out;
  if (!node.IsSequence()) {
    sink.at(node, std::string(what) + " must be a list of addresses or CIDR prefixes");
    return out;
  }
  for (const auto& item : node) {
    IpPrefix p;
    if (!item.IsScalar() || !IpPrefix::parse(item.Scalar(), p)) {
      sink.at(item, std::string(what) + ": '" + (item.IsScalar() ? item.Scalar() : "?") +
                        "' is not an address or CIDR prefix with zero host bits "
                        "(e.g. 192.0.2.0/24, 2001:db8::/32)");
      continue;
    }
    out.push_back(p);
  }
  return out;
}

std::vector<std::string> get_endpoint_list(const YAML::Node& node, std::string_view what,
                                           ErrorSink& sink) {
  std::vector<std::string> out;
  for (auto& s : get_string_list(node, what, sink)) {
    IpAddress addr;
    std::uint16_t port;
    if (!parse_endpoint(s, addr, port)) {
      sink.at(node, std::string(what) + ": '" + s +
                        "' is not ADDRESS:PORT (e.g. 127.0.0.1:5514 or [::1]:5514)");
      continue;
    }
    out.push_back(std::move(s));
  }
  return out;
}

// An unsigned integer in [min, max]; leaves `out` unchanged when the node is absent.
void get_bounded_uint(const YAML::Node& node, std::string_view what, std::uint32_t min,
                      std::uint32_t max, std::uint32_t& out, ErrorSink& sink) {
  if (!node) return;
  std::uint64_t v = 0;
  bool ok = node.IsScalar() && !node.Scalar().empty() && node.Scalar().size() <= 10;
  if (ok) {
    for (char c : node.Scalar()) {
      if (c < '0' || c > '9') ok = false;
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
  }
  if (!ok || v < min || v > max) {
    sink.at(node, std::string(what) + " must be a whole number from " + std::to_string(min) +
                      " to " + std::to_string(max));
    return;
  }
  out = static_cast<std::uint32_t>(v);
}

std::string resolve(const fs::path& base_dir, const std::string& p) {
  fs::path path(p);
  if (path.is_relative()) path = base_dir / path;
  return path.lexically_normal().string();
}

void load_listen(const YAML::Node& node, ListenConfig& out, ErrorSink& sink) {
  if (!check_keys(node, "listen",
                  {"udp", "tcp", "allowed_senders", "tcp_max_connections", "tcp_idle_timeout",
                   "max_message_size"},
                  sink)) {
    return;
  }
  get_bounded_uint(node["tcp_max_connections"], "listen.tcp_max_connections", 1, 1'000'000,
                   out.tcp_max_connections, sink);
  get_bounded_uint(node["max_message_size"], "listen.max_message_size", 480,
                   static_cast<std::uint32_t>(ingest::kMaxSyslogMessageLength), out.max_message_size,
                   sink);
  if (const YAML::Node t = node["tcp_idle_timeout"]) {
    const auto seconds = t.IsScalar() ? parse_duration_seconds(t.Scalar()) : std::nullopt;
    if (seconds) {
      out.tcp_idle_timeout_seconds = *seconds;
    } else {
      sink.at(t, "listen.tcp_idle_timeout must be a duration such as 90s, 10m, 1h");
    }
  }
  if (node["udp"]) out.udp = get_endpoint_list(node["udp"], "listen.udp", sink);
  if (node["tcp"]) out.tcp = get_endpoint_list(node["tcp"], "listen.tcp", sink);
  if (node["allowed_senders"]) {
    out.allowed_senders = get_prefix_list(node["allowed_senders"], "listen.allowed_senders", sink);
  }
}

void load_firewall(const YAML::Node& node, FirewallConfig& out, ErrorSink& sink) {
  if (!check_keys(node, "firewall", {"backend", "table", "ports", "hooks"}, sink)) return;
  if (node["backend"] && get_string(node["backend"], "firewall.backend", out.backend, sink) &&
      out.backend != "nftables" && out.backend != "dry-run") {
    sink.at(node["backend"], "firewall.backend must be 'nftables' or 'dry-run', not '" +
                                 out.backend + "'");
  }
  if (node["table"] && get_string(node["table"], "firewall.table", out.table, sink)) {
    const bool ok = !out.table.empty() && out.table.size() <= 64 &&
                    std::all_of(out.table.begin(), out.table.end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
                    });
    if (!ok) sink.at(node["table"], "firewall.table must be 1-64 letters, digits, '_' or '-'");
  }
  if (const YAML::Node ports = node["ports"]) {
    if (ports.IsScalar() && ports.Scalar() == "all") {
      out.all_ports = true;
      out.ports.clear();
    } else if (ports.IsSequence()) {
      out.all_ports = false;
      out.ports.clear();
      std::set<unsigned> seen;
      for (const auto& p : ports) {
        unsigned v = 0;
        try {
          v = p.as<unsigned>();
        } catch (const YAML::Exception&) {
          v = 0;
        }
        if (v == 0 || v > 65535) {
          sink.at(p, "firewall.ports entries must be port numbers 1-65535");
        } else if (seen.insert(v).second) {
          out.ports.push_back(static_cast<std::uint16_t>(v));
        }
      }
      if (out.ports.empty() && ports.size() == 0) {
        sink.at(ports, "firewall.ports is empty: list the ports to protect, or write 'all'");
      }
    } else {
      sink.at(ports, "firewall.ports must be a list of port numbers or 'all'");
    }
  }
  if (const YAML::Node hooks = node["hooks"]) {
    out.hooks = get_string_list(hooks, "firewall.hooks", sink);
    for (const auto& h : out.hooks) {
      if (h != "input" && h != "forward") {
        sink.at(hooks, "firewall.hooks entries must be 'input' or 'forward', not '" + h + "'");
      }
    }
    if (out.hooks.empty()) sink.at(hooks, "firewall.hooks must name at least one hook");
  }
}

std::vector<std::string> expand_rule_files(const YAML::Node& node, const fs::path& base_dir,
                                           ErrorSink& sink) {
  std::vector<std::string> files;
  for (const auto& pattern : get_string_list(node, "rule_files", sink)) {
    const std::string full = resolve(base_dir, pattern);
    glob_t g{};
    const int rc = ::glob(full.c_str(), GLOB_ERR, nullptr, &g);
    if (rc == 0) {
      for (std::size_t i = 0; i < g.gl_pathc; ++i) files.emplace_back(g.gl_pathv[i]);
    } else {
      sink.at(node, "rule_files: '" + pattern + "' (" + full +
                        ") matched no file; without rules nothing is ever banned");
    }
    globfree(&g);
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

// The document's contents into `out` (defaults already set); false if it is not a mapping.
bool load_document(const YAML::Node& root, const std::string& path, Config& out,
                   std::vector<ConfigError>& errors, ErrorSink& sink) {
  if (!root.IsMap()) {
    sink.file_level("the configuration must be a YAML mapping (see config/authwall.yaml)");
    return false;
  }
  const fs::path base_dir = fs::absolute(fs::path(path)).parent_path();
  check_keys(root, "the configuration",
             {"listen", "metrics", "control", "state", "firewall", "never_ban", "trusted_proxies",
              "rule_files", "patterns", "max_tracked_keys"},
             sink);

  const std::size_t errors_before_listen = sink.count();
  if (root["listen"]) load_listen(root["listen"], out.listen, sink);
  if (out.listen.udp.empty() && out.listen.tcp.empty() && sink.count() == errors_before_listen) {
    sink.at(root["listen"] ? root["listen"] : root,
            "listen: no udp or tcp address; authwall would receive nothing");
  }
  if (const YAML::Node m = root["metrics"]; m && check_keys(m, "metrics", {"listen"}, sink)) {
    if (m["listen"] && get_string(m["listen"], "metrics.listen", out.metrics_listen, sink) &&
        !out.metrics_listen.empty()) {
      IpAddress a;
      std::uint16_t port;
      if (!parse_endpoint(out.metrics_listen, a, port)) {
        sink.at(m["listen"], "metrics.listen: '" + out.metrics_listen +
                                 "' is not ADDRESS:PORT (or \"\" to disable)");
      }
    }
  }
  out.control_socket = resolve(base_dir, "var/authwall.sock");
  if (const YAML::Node c = root["control"]; c && check_keys(c, "control", {"socket"}, sink)) {
    std::string s;
    if (c["socket"] && get_string(c["socket"], "control.socket", s, sink)) {
      out.control_socket = resolve(base_dir, s);
    }
  }
  out.state_path = resolve(base_dir, "var/authwall.db");
  if (const YAML::Node s = root["state"]; s && check_keys(s, "state", {"path"}, sink)) {
    std::string v;
    if (s["path"] && get_string(s["path"], "state.path", v, sink)) out.state_path = resolve(base_dir, v);
  }
  if (root["firewall"]) load_firewall(root["firewall"], out.firewall, sink);
  get_bounded_uint(root["max_tracked_keys"], "max_tracked_keys", 1024, 100'000'000,
                   out.max_tracked_keys, sink);
  if (root["never_ban"]) out.never_ban = get_prefix_list(root["never_ban"], "never_ban", sink);
  if (root["trusted_proxies"]) {
    out.trusted_proxies = get_prefix_list(root["trusted_proxies"], "trusted_proxies", sink);
  }
  if (root["rule_files"]) {
    out.rule_files = expand_rule_files(root["rule_files"], base_dir, sink);
  } else {
    sink.at(root, "rule_files is missing; without rules nothing is ever banned");
  }
  if (root["patterns"]) {
    normalize::parse_custom_patterns(root["patterns"], path, out.patterns, errors);
  }
  return true;
}

}  // namespace

bool load_config(const std::string& path, Config& out, std::vector<ConfigError>& errors) {
  const std::size_t errors_before = errors.size();
  ErrorSink sink(path, errors);
  out = Config{};
  out.path = path;
  IpPrefix p;
  IpPrefix::parse("127.0.0.0/8", p);
  out.listen.allowed_senders.push_back(p);
  out.never_ban.push_back(p);
  IpPrefix::parse("::1/128", p);
  out.listen.allowed_senders.push_back(p);
  out.never_ban.push_back(p);

  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    sink.file_level("cannot read the configuration file");
    return false;
  } catch (const YAML::ParserException& e) {
    sink.at_mark(e.mark, "YAML syntax error: " + e.msg);
    return false;
  }
  // Every check below reports through the sink; a yaml-cpp conversion that throws anyway (a
  // shape no check foresaw) still becomes one positioned error, never an escaped exception.
  try {
    if (!load_document(root, path, out, errors, sink)) return false;
  } catch (const YAML::Exception& e) {
    sink.at_mark(e.mark, "invalid configuration: " + e.msg);
  }
  return errors.size() == errors_before;
}

bool load_full_config(const std::string& path, LoadedConfig& out, std::vector<ConfigError>& errors) {
  const std::size_t errors_before = errors.size();
  out = LoadedConfig{};
  // Keep going after errors in the main file: `validate` reports every error at once.
  load_config(path, out.config, errors);
  rules::load_rule_files(out.config.rule_files, out.rules, errors);
  out.patterns = normalize::CustomPatternSet::build(out.config.patterns, errors);
  return errors.size() == errors_before && out.patterns != nullptr;
}

}  // namespace authwall::app
