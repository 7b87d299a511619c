#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "app/commands.h"
#include "app/daemon.h"
#include "app/log.h"

namespace authwall::app {

void register_serve_command(CLI::App& cli, CommandAction& action) {
  auto* cmd = cli.add_subcommand("serve", "Run the daemon: receive syslog, evaluate rules, ban");
  auto options = std::make_shared<ServeOptions>();
  auto level = std::make_shared<std::string>("info");
  cmd->add_option("-c,--config", options->config_path, "configuration file")->required();
  cmd->add_flag("--dry-run", options->dry_run,
                "use the dry-run firewall backend: decisions are logged, counted, persisted and "
                "listed, the kernel is left alone");
  cmd->add_option("--io-threads", options->io_threads, "I/O worker threads (default 2)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--log-level", *level, "error, warning, info (default) or debug")
      ->check(CLI::IsMember({"error", "warning", "info", "debug"}));
  cmd->callback([&action, options, level] {
    action = [options, level] {
      if (*level == "error") set_log_level(LogLevel::error);
      if (*level == "warning") set_log_level(LogLevel::warning);
      if (*level == "info") set_log_level(LogLevel::info);
      if (*level == "debug") set_log_level(LogLevel::debug);
      return run_daemon(*options);
    };
  });
}

}  // namespace authwall::app
