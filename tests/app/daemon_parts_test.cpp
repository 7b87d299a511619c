// The daemon's ban book, its JSON/table output, and the control socket round trip.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "app/control_socket.h"
#include "app/daemon.h"

namespace authwall::app {
namespace {

constexpr UnixMicros kNow = 1'795'000'000LL * kMicrosPerSecond;  // 2026-11-18T...

IpPrefix prefix(const char* text) {
  IpPrefix p;
  EXPECT_TRUE(IpPrefix::parse(text, p)) << text;
  return p;
}

TEST(BanBook, FindsCoversListsAndExpires) {
  BanBook book;
  book.put({prefix("192.0.2.7"), "bruteforce", kNow, kNow + 3600 * kMicrosPerSecond, 1});
  book.put({prefix("2001:db8:1::/64"), "bruteforce", kNow, kNow + 60 * kMicrosPerSecond, 2});
  book.put({prefix("198.51.100.0/24"), "manual", kNow, kNow + 7200 * kMicrosPerSecond, 1});
  EXPECT_TRUE(book.find(prefix("192.0.2.7"), kNow));
  EXPECT_FALSE(book.find(prefix("192.0.2.8"), kNow));
  ASSERT_TRUE(book.covering(prefix("198.51.100.9"), kNow));
  EXPECT_EQ(book.covering(prefix("198.51.100.9"), kNow)->rule, "manual");
  EXPECT_FALSE(book.covering(prefix("198.51.0.0/16"), kNow));  // wider than any ban
  EXPECT_EQ(book.inside(prefix("192.0.2.0/24"), kNow).size(), 1u);
  EXPECT_TRUE(book.inside(prefix("192.0.2.7"), kNow).empty());  // not strictly inside itself
  const auto list = book.list(kNow);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].target.to_string(), "2001:db8:1::/64");  // soonest expiry first
  // Expired bans vanish from every view, then from the book.
  const UnixMicros later = kNow + 61 * kMicrosPerSecond;
  EXPECT_EQ(book.count(later), 2u);
  EXPECT_FALSE(book.find(prefix("2001:db8:1::/64"), later));
  book.prune(later);
  book.erase(prefix("192.0.2.7"));
  EXPECT_EQ(book.count(kNow), 1u);
}

TEST(BanOutput, JsonHasTargetRuleAndRfc3339Expiry) {
  const std::vector<ActiveBan> bans{
      {prefix("2001:db8:1::/64"), "mail-auth-bruteforce", kNow, kNow + 90 * kMicrosPerSecond + 5, 3}};
  const std::string json = format_bans_json(bans, kNow);
  EXPECT_EQ(json, "[\n  {\"target\": \"2001:db8:1::/64\", \"rule\": \"mail-auth-bruteforce\", "
                  "\"expires\": \"" + format_rfc3339(kNow + 90 * kMicrosPerSecond) +
                  "\", \"created\": \"" + format_rfc3339(kNow) +
                  "\", \"remaining_seconds\": 91, \"offence\": 3}\n]\n");
  EXPECT_EQ(format_bans_json({}, kNow), "[]\n");
  EXPECT_EQ(format_bans_table({}, kNow), "no active bans\n");
  const std::string table = format_bans_table(bans, kNow);
  EXPECT_NE(table.find("TARGET"), std::string::npos);
  EXPECT_NE(table.find("2001:db8:1::/64  mail-auth-bruteforce"), std::string::npos) << table;
}

TEST(ControlSocket, RoundTripModeAndNotRunningError) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("authwall-control-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "sub" / "control.sock").string();

  std::string reply;
  std::string error;
  EXPECT_FALSE(control_request(path, "bans json", reply, error));
  EXPECT_EQ(error, "authwall is not running (no control socket at " + path + ")");

  boost::asio::io_context io;
  ControlSocketServer server(io, [](std::string_view request) {
    return "ok\nyou said: " + std::string(request) + "\n";
  });
  ASSERT_TRUE(server.listen(path, 0600, error)) << error;
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A second daemon on the same socket is refused while the first one answers.
  {
    boost::asio::io_context io2;
    ControlSocketServer second(io2, [](std::string_view) { return std::string(); });
    std::thread t([&] { io.run_for(std::chrono::milliseconds(500)); });
    std::string e2;
    EXPECT_FALSE(second.listen(path, 0600, e2));
    EXPECT_NE(e2.find("already running"), std::string::npos) << e2;
    t.join();
  }
  io.restart();
  std::thread t([&] { io.run_for(std::chrono::seconds(5)); });
  ASSERT_TRUE(control_request(path, "ban 192.0.2.7 3600", reply, error)) << error;
  EXPECT_EQ(reply, "ok\nyou said: ban 192.0.2.7 3600\n");
  server.stop();
  t.join();
  EXPECT_FALSE(std::filesystem::exists(path));  // removed on stop
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace authwall::app
