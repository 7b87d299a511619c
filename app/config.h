#pragma once
// The main configuration file (PRODUCT.md "Configuration"), loaded into plain structs.
// Loading collects every error as "file:line:col: message"; unknown keys are errors.
// Paths in the file are relative to the file's own directory and are stored resolved.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/config_error.h"
#include "common/ip_address.h"
#include "normalize/custom_patterns.h"
#include "rules/rule_config.h"

namespace authwall::app {

struct ListenConfig {
  std::vector<std::string> udp;  // "host:port" / "[v6]:port"
  std::vector<std::string> tcp;
  std::vector<IpPrefix> allowed_senders;  // default 127.0.0.0/8, ::1/128
  std::uint32_t tcp_max_connections = 1024;     // further connections are refused and counted
  std::int64_t tcp_idle_timeout_seconds = 600;  // a silent connection is closed after this
  std::uint32_t max_message_size = 64 * 1024;   // longer frames are dropped and counted
};

struct FirewallConfig {
  std::string backend = "nftables";  // nftables | dry-run
  std::string table = "authwall";
  bool all_ports = false;
  std::vector<std::uint16_t> ports{25, 465, 587, 110, 995, 143, 993, 4190};
  std::vector<std::string> hooks{"input", "forward"};
};

struct Config {
  std::string path;  // the file this came from
  ListenConfig listen;
  std::string metrics_listen = "127.0.0.1:9464";  // empty = disabled
  std::string control_socket;                     // resolved path
  std::string state_path;                         // resolved path
  FirewallConfig firewall;
  std::vector<IpPrefix> never_ban;                // default 127.0.0.0/8, ::1/128
  std::vector<IpPrefix> trusted_proxies;
  // Keys (addresses, users, address+user pairs) one rule tracks at most; beyond it the least
  // recently seen idle key is evicted (counted). Restart to change it.
  std::uint32_t max_tracked_keys = 1'000'000;
  std::vector<std::string> rule_files;            // resolved paths (globs expanded)
  std::vector<normalize::CustomPatternSpec> patterns;  // `patterns:` (docs/configuration.md)
};

// Returns false and fills `errors` when the file cannot be read or is invalid.
bool load_config(const std::string& path, Config& out, std::vector<ConfigError>& errors);

// Everything `serve`, `check -c` and `validate` need, loaded and validated as one snapshot:
// the main file, every rule file, and the compiled custom patterns. SIGHUP builds a new one and
// swaps it in only if this returns true.
struct LoadedConfig {
  Config config;
  rules::RuleSet rules;
  std::shared_ptr<const normalize::CustomPatternSet> patterns;  // never null when loaded
};
bool load_full_config(const std::string& path, LoadedConfig& out, std::vector<ConfigError>& errors);

}  // namespace authwall::app
