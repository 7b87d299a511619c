#include "common/ip_address.h"

#include <gtest/gtest.h>

namespace authwall {
namespace {

std::string canonical(std::string_view text) {
  IpAddress a;
  if (!IpAddress::parse(text, a)) return "<invalid>";
  return a.to_string();
}

TEST(IpAddress, CanonicalisesMappedAndCase) {
  EXPECT_EQ(canonical("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(canonical("::ffff:192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(canonical("::FFFF:c000:0201"), "192.0.2.1");
  EXPECT_EQ(canonical("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
  EXPECT_EQ(canonical("2001:db8::"), "2001:db8::");
}

TEST(IpAddress, RejectsNonAddresses) {
  for (const char* bad : {"", "unknown", "192.0.2", "192.0.2.256", "1.2.3.4 ", "fe80::1%eth0",
                          "[2001:db8::1]", "2001:db8:::1", "0x7f.1", "01.2.3.4.5",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    EXPECT_EQ(canonical(bad), "<invalid>") << bad;
  }
}

TEST(IpPrefix, MasksAndContains) {
  IpAddress a;
  ASSERT_TRUE(IpAddress::parse("2001:db8:1:2:3:4:5:6", a));
  const IpPrefix p = IpPrefix::of(a, 64);
  EXPECT_EQ(p.to_string(), "2001:db8:1:2::/64");
  IpAddress b;
  ASSERT_TRUE(IpAddress::parse("2001:db8:1:2:ffff::1", b));
  EXPECT_TRUE(p.contains(b));
  ASSERT_TRUE(IpAddress::parse("2001:db8:1:3::1", b));
  EXPECT_FALSE(p.contains(b));
  ASSERT_TRUE(IpAddress::parse("192.0.2.77", b));
  EXPECT_FALSE(p.contains(b));
  EXPECT_EQ(IpPrefix::of(b, 24).to_string(), "192.0.2.0/24");
  EXPECT_EQ(IpPrefix::of(b, 32).to_string(), "192.0.2.77");
}

TEST(IpPrefix, ParsesCidr) {
  IpPrefix p;
  ASSERT_TRUE(IpPrefix::parse("127.0.0.0/8", p));
  IpAddress a;
  ASSERT_TRUE(IpAddress::parse("127.1.2.3", a));
  EXPECT_TRUE(p.contains(a));
  EXPECT_FALSE(IpPrefix::parse("127.0.0.1/8", p));  // host bits set
  EXPECT_TRUE(IpPrefix::parse("127.0.0.1/8", p, true));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/33", p));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/", p));
  ASSERT_TRUE(IpPrefix::parse("::1/128", p));
  EXPECT_EQ(p.to_string(), "::1");
}

}  // namespace
}  // namespace authwall

namespace authwall {
namespace {

TEST(Endpoint, ParsesHostPort) {
  IpAddress a;
  std::uint16_t port = 0;
  ASSERT_TRUE(parse_endpoint("127.0.0.1:5514", a, port));
  EXPECT_EQ(a.to_string(), "127.0.0.1");
  EXPECT_EQ(port, 5514);
  ASSERT_TRUE(parse_endpoint("[::1]:514", a, port));
  EXPECT_EQ(a.to_string(), "::1");
  EXPECT_EQ(port, 514);
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "::1:514",
                          "[127.0.0.1]:514", "[::1]514", "localhost:514", "1.2.3.4:5x"}) {
    EXPECT_FALSE(parse_endpoint(bad, a, port)) << bad;
  }
}

}  // namespace
}  // namespace authwall
