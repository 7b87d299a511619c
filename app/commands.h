#pragma once
// Each subcommand registers itself on the CLI11 app and sets `action` to the code to run
// after parsing. Exit codes (PRODUCT.md): 0 success, 1 runtime failure, 2 usage/config error.
#include <functional>

namespace CLI {
class App;
}

namespace authwall::app {

using CommandAction = std::function<int()>;

void register_version_command(CLI::App& cli, CommandAction& action);
void register_check_command(CLI::App& cli, CommandAction& action);
void register_validate_command(CLI::App& cli, CommandAction& action);
void register_serve_command(CLI::App& cli, CommandAction& action);
// bans, ban, unban (clients of the daemon's control socket)
void register_control_commands(CLI::App& cli, CommandAction& action);

}  // namespace authwall::app
