// authwall: one binary, subcommands (PRODUCT.md "CLI").
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "app/commands.h"

int main(int argc, char** argv) {
  CLI::App cli{"authwall: turns Postfix and Dovecot authentication abuse into nftables bans"};
  cli.require_subcommand(1);
  authwall::app::CommandAction action;
  authwall::app::register_version_command(cli, action);
  authwall::app::register_check_command(cli, action);
  authwall::app::register_validate_command(cli, action);
  authwall::app::register_serve_command(cli, action);
  authwall::app::register_control_commands(cli, action);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = cli.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    return action ? action() : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "authwall: %s\n", e.what());
    return 1;
  }
}
