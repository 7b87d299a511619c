#include <CLI/CLI.hpp>
#include <cstdio>

#include "app/commands.h"
#include "app/config.h"

namespace authwall::app {

void register_validate_command(CLI::App& cli, CommandAction& action) {
  auto* cmd = cli.add_subcommand(
      "validate", "Load and check the configuration and every rule file; print each error as "
                  "file:line:col: message; exit 2 if any");
  auto path = std::make_shared<std::string>();
  cmd->add_option("-c,--config", *path, "configuration file")->required();
  cmd->callback([&action, path] {
    action = [path] {
      LoadedConfig loaded;
      std::vector<ConfigError> errors;
      if (!load_full_config(*path, loaded, errors)) {
        for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
        std::fprintf(stderr, "authwall: %zu error%s in the configuration\n", errors.size(),
                     errors.size() == 1 ? "" : "s");
        return 2;
      }
      std::printf("%s: OK (%zu rule file%s, %zu rule%s, %zu custom pattern%s)\n", path->c_str(),
                  loaded.config.rule_files.size(), loaded.config.rule_files.size() == 1 ? "" : "s",
                  loaded.rules.rules.size(), loaded.rules.rules.size() == 1 ? "" : "s",
                  loaded.patterns->size(), loaded.patterns->size() == 1 ? "" : "s");
      return 0;
    };
  });
}

}  // namespace authwall::app
