#include "app/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace authwall::app {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("authwall-config-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "rules.d");
    std::ofstream(dir_ / "rules.d" / "a.yaml") << "rules: []\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& text) {
    const auto path = (dir_ / "authwall.yaml").string();
    std::ofstream(path) << text;
    return path;
  }
  std::vector<std::string> load_errors(const std::string& text) {
    Config c;
    std::vector<ConfigError> errors;
    load_config(write(text), c, errors);
    std::vector<std::string> out;
    for (const auto& e : errors) out.push_back(e.to_string());
    return out;
  }

  fs::path dir_;
};

TEST_F(ConfigTest, ShippedDefaultLoads) {
  Config c;
  std::vector<ConfigError> errors;
  const std::string path = std::string(AUTHWALL_SOURCE_DIR) + "/config/authwall.yaml";
  ASSERT_TRUE(load_config(path, c, errors)) << (errors.empty() ? "" : errors[0].to_string());
  EXPECT_EQ(c.listen.udp, std::vector<std::string>{"127.0.0.1:5514"});
  EXPECT_EQ(c.firewall.backend, "nftables");
  EXPECT_EQ(c.firewall.ports.size(), 8u);
  ASSERT_FALSE(c.rule_files.empty());
  EXPECT_TRUE(c.rule_files[0].ends_with("config/rules.d/mail.yaml"));
  EXPECT_TRUE(c.control_socket.ends_with("config/var/authwall.sock"));
}

TEST_F(ConfigTest, ResolvesPathsRelativeToTheFile) {
  Config c;
  std::vector<ConfigError> errors;
  ASSERT_TRUE(load_config(write("listen: {udp: ['127.0.0.1:5514'], tcp_idle_timeout: 2m}\n"
                                "state: {path: st/a.db}\n"
                                "control: {socket: /run/aw.sock}\n"
                                "firewall: {ports: all}\n"
                                "rule_files: ['rules.d/*.yaml']\n"),
                          c, errors));
  EXPECT_EQ(c.state_path, (dir_ / "st" / "a.db").string());
  EXPECT_EQ(c.control_socket, "/run/aw.sock");
  EXPECT_TRUE(c.firewall.all_ports);
  EXPECT_EQ(c.listen.tcp_max_connections, 1024u);
  EXPECT_EQ(c.listen.tcp_idle_timeout_seconds, 120);
  EXPECT_EQ(c.listen.max_message_size, 65536u);
  EXPECT_EQ(c.rule_files, std::vector<std::string>{(dir_ / "rules.d" / "a.yaml").string()});
  // Defaults.
  EXPECT_EQ(c.max_tracked_keys, 1'000'000u);
  ASSERT_EQ(c.never_ban.size(), 2u);
  EXPECT_EQ(c.never_ban[0].to_string(), "127.0.0.0/8");
}

TEST_F(ConfigTest, ReportsEveryErrorWithPosition) {
  const auto errors = load_errors(
      "listen:\n"
      "  udp: ['127.0.0.1']\n"
      "  tpc: ['127.0.0.1:5514']\n"
      "  tcp_max_connections: 0\n"
      "  tcp_idle_timeout: 10\n"
      "  max_message_size: 100000\n"
      "firewall:\n"
      "  backend: iptables\n"
      "  ports: [25, 70000]\n"
      "never_ban: ['10.0.0.1/8']\n"
      "rule_files: ['nothing/*.yaml']\n"
      "colour: blue\n");
  const std::string f = (dir_ / "authwall.yaml").string();
  auto has = [&](const std::string& prefix, const std::string& needle) {
    for (const auto& e : errors) {
      if (e.starts_with(f + ":" + prefix) && e.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("2:", "is not ADDRESS:PORT")) << ::testing::PrintToString(errors);
  EXPECT_TRUE(has("3:3:", "unknown key 'tpc' in listen"));
  EXPECT_TRUE(has("4:24:", "listen.tcp_max_connections must be a whole number from 1"));
  EXPECT_TRUE(has("5:21:", "listen.tcp_idle_timeout must be a duration"));
  EXPECT_TRUE(has("6:21:", "listen.max_message_size must be a whole number from 480 to 65536"));
  EXPECT_TRUE(has("8:12:", "must be 'nftables' or 'dry-run'"));
  EXPECT_TRUE(has("9:", "port numbers 1-65535"));
  EXPECT_TRUE(has("10:", "zero host bits"));
  EXPECT_TRUE(has("11:", "matched no file"));
  EXPECT_TRUE(has("12:1:", "unknown key 'colour'"));
}

TEST_F(ConfigTest, MaxTrackedKeysIsBounded) {
  Config c;
  std::vector<ConfigError> errors;
  ASSERT_TRUE(load_config(write("listen: {udp: ['127.0.0.1:5514']}\n"
                                "max_tracked_keys: 250000\n"
                                "rule_files: ['rules.d/*.yaml']\n"),
                          c, errors));
  EXPECT_EQ(c.max_tracked_keys, 250'000u);
  for (const char* bad : {"100", "100000001", "lots", "-5"}) {
    const auto e = load_errors(std::string("listen: {udp: ['127.0.0.1:5514']}\n"
                                           "max_tracked_keys: ") + bad +
                               "\nrule_files: ['rules.d/*.yaml']\n");
    ASSERT_EQ(e.size(), 1u) << bad << ": " << ::testing::PrintToString(e);
    EXPECT_NE(e[0].find(":2:19: max_tracked_keys must be a whole number from 1024 to 100000000"),
              std::string::npos)
        << e[0];
  }
}

TEST_F(ConfigTest, SyntaxErrorAndMissingFile) {
  auto errors = load_errors("listen: [unclosed\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("YAML syntax error"), std::string::npos) << errors[0];
  Config c;
  std::vector<ConfigError> errs;
  EXPECT_FALSE(load_config((dir_ / "missing.yaml").string(), c, errs));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].to_string().find("cannot read"), std::string::npos);
}

// YAML allows a list or mapping as a key (`? [a, b]: ...`); found by tests/fuzz/config_fuzz.cpp,
// it used to escape as a yaml-cpp exception and end the program.
TEST_F(ConfigTest, ComplexKeyIsAnErrorNotACrash) {
  auto errors = load_errors("listen: {udp: ['127.0.0.1:5514']}\n"
                            "state:\n"
                            " ? path: var/a.db\n"
                            "rule_files: ['nothing/*.yaml']\n");
  bool found = false;
  for (const auto& e : errors) found = found || e.find("state: a key must be a plain name") != std::string::npos;
  EXPECT_TRUE(found) << ::testing::PrintToString(errors);
}

}  // namespace
}  // namespace authwall::app
