// `authwall bans|ban|unban`: thin clients of the running daemon's control socket
// (app/control_socket.h). The daemon validates and formats; the client finds the socket,
// sends one line, prints the reply.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "app/commands.h"
#include "app/config.h"
#include "app/control_socket.h"
#include "common/duration.h"
#include "common/ip_address.h"

namespace authwall::app {
namespace {

struct SocketOptions {
  std::string config_path;
  std::string socket_path;
};

void add_socket_options(CLI::App* cmd, SocketOptions& o) {
  cmd->add_option("-c,--config", o.config_path, "The daemon's configuration file (its control.socket)");
  cmd->add_option("--socket", o.socket_path, "The control socket path");
}

// Finds the socket path; prints the problem and returns an exit code on failure, else -1.
int resolve_socket(const SocketOptions& o, std::string& path) {
  if (!o.socket_path.empty()) {
    path = o.socket_path;
    return -1;
  }
  if (o.config_path.empty()) {
    std::fprintf(stderr, "authwall: give the daemon's configuration (-c FILE) or its control socket (--socket PATH)\n");
    return 2;
  }
  Config config;
  std::vector<ConfigError> errors;
  if (!load_config(o.config_path, config, errors)) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return 2;
  }
  if (config.control_socket.empty()) {
    std::fprintf(stderr, "authwall: %s sets no control.socket\n", o.config_path.c_str());
    return 2;
  }
  path = config.control_socket;
  return -1;
}

// Sends `request` and prints the reply body; "error ..." replies go to stderr, exit 1.
int run_request(const SocketOptions& o, const std::string& request) {
  std::string path;
  if (const int rc = resolve_socket(o, path); rc >= 0) return rc;
  std::string reply;
  std::string error;
  if (!control_request(path, request, reply, error)) {
    std::fprintf(stderr, "authwall: %s\n", error.c_str());
    return 1;
  }
  const auto nl = reply.find('\n');
  const std::string status = reply.substr(0, nl);
  const std::string body = nl == std::string::npos ? std::string() : reply.substr(nl + 1);
  if (status == "ok") {
    std::fwrite(body.data(), 1, body.size(), stdout);
    return 0;
  }
  if (status.rfind("error ", 0) == 0) {
    std::fprintf(stderr, "authwall: %s\n", status.substr(6).c_str());
    // Usage-type refusals (bad target, never_ban) are the caller's mistake.
    return status.find("usage:") != std::string::npos ? 2 : 1;
  }
  std::fprintf(stderr, "authwall: unexpected reply from the daemon: %s\n", status.c_str());
  return 1;
}

bool check_target(const std::string& text) {
  IpPrefix prefix;
  if (IpPrefix::parse(text, prefix)) return true;
  std::fprintf(stderr,
               "authwall: '%s' is not an address or prefix (ADDR or ADDR/PREFIX with the host bits "
               "zero, e.g. 192.0.2.7 or 2001:db8:1::/64)\n",
               text.c_str());
  return false;
}

}  // namespace

void register_control_commands(CLI::App& cli, CommandAction& action) {
  {
    auto opts = std::make_shared<SocketOptions>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = cli.add_subcommand("bans", "List the running daemon's active bans");
    add_socket_options(cmd, *opts);
    cmd->add_flag("--json", *json, "Print one JSON array of {target, rule, expires, ...}");
    cmd->callback([&action, opts, json] {
      action = [opts, json] { return run_request(*opts, *json ? "bans json" : "bans text"); };
    });
  }
  {
    auto opts = std::make_shared<SocketOptions>();
    auto target = std::make_shared<std::string>();
    auto duration = std::make_shared<std::string>("1h");
    auto* cmd = cli.add_subcommand("ban", "Ban an address or prefix through the running daemon");
    add_socket_options(cmd, *opts);
    cmd->add_option("target", *target, "ADDR or ADDR/PREFIX")->required();
    cmd->add_option("--for", *duration, "How long (e.g. 30m, 1h, 7d; default 1h)");
    cmd->callback([&action, opts, target, duration] {
      action = [opts, target, duration] {
        if (!check_target(*target)) return 2;
        const auto seconds = parse_duration_seconds(*duration);
        if (!seconds) {
          std::fprintf(stderr, "authwall: --for '%s' is not a duration (e.g. 90s, 30m, 1h, 7d)\n",
                       duration->c_str());
          return 2;
        }
        return run_request(*opts, "ban " + *target + " " + std::to_string(*seconds));
      };
    });
  }
  {
    auto opts = std::make_shared<SocketOptions>();
    auto target = std::make_shared<std::string>();
    auto* cmd = cli.add_subcommand("unban", "Lift a ban through the running daemon");
    add_socket_options(cmd, *opts);
    cmd->add_option("target", *target, "ADDR or ADDR/PREFIX")->required();
    cmd->callback([&action, opts, target] {
      action = [opts, target] {
        if (!check_target(*target)) return 2;
        return run_request(*opts, "unban " + *target);
      };
    });
  }
}

}  // namespace authwall::app
