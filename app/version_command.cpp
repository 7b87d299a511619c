#include <CLI/CLI.hpp>
#include <cstdio>

#include "app/commands.h"
#include "build_info.h"

namespace authwall::app {

void register_version_command(CLI::App& cli, CommandAction& action) {
  auto* cmd = cli.add_subcommand("version", "Print the version and build information");
  cmd->callback([&action] {
    action = [] {
      std::printf("authwall %s\nrevision: %s\nbuild: %s\ncompiler: %s\n", build_info::version,
                  build_info::git_revision, build_info::build_type, build_info::compiler);
      return 0;
    };
  });
}

}  // namespace authwall::app
