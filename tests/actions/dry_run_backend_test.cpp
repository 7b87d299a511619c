// DryRunBanBackend: the in-memory twin of NftBanBackend. Every case here states a kernel
// behaviour; nft_backend_test.cpp runs the same sequences against the kernel and compares.
#include "actions/dry_run_backend.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

namespace authwall::actions {
namespace {

constexpr UnixMicros kT0 = 1'790'000'000LL * kMicrosPerSecond;  // some day in 2026

IpPrefix P(const char* text) {
  IpPrefix p;
  EXPECT_TRUE(IpPrefix::parse(text, p)) << text;
  return p;
}

std::vector<SetElement> listed(DryRunBanBackend& b, UnixMicros now) {
  std::vector<SetElement> out;
  std::string error;
  EXPECT_TRUE(b.list(out, now, error));
  return out;
}

TEST(DryRunBanBackend, AddressAndPrefixBansAreListedWithTheirTimeouts) {
  DryRunBanBackend b;
  ASSERT_TRUE(b.prepare().ok);
  const std::vector<BanChange> changes{BanChange::add(P("192.0.2.7"), 3600),
                                       BanChange::add(P("2001:db8:1::/64"), 7200),
                                       BanChange::add(P("198.51.100.0/24"), 60)};
  const BatchResult r = b.apply(changes, kT0);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.applied, 3u);
  EXPECT_EQ(r.batches_sent, 1u);

  const auto l = listed(b, kT0 + 10 * kMicrosPerSecond);
  ASSERT_EQ(l.size(), 3u);
  // IPv4 first, in address order, then IPv6 (the order NftBanBackend lists in).
  EXPECT_EQ(l[0].prefix.to_string(), "192.0.2.7");
  EXPECT_TRUE(l[0].is_prefix);
  EXPECT_EQ(l[0].timeout_ms, 3'600'000u);
  EXPECT_EQ(l[0].expires_in_ms, 3'590'000u);
  EXPECT_EQ(l[1].prefix.to_string(), "198.51.100.0/24");
  EXPECT_EQ(l[1].last.to_string(), "198.51.100.255");
  EXPECT_EQ(l[2].prefix.to_string(), "2001:db8:1::/64");
  EXPECT_EQ(l[2].last.to_string(), "2001:db8:1:0:ffff:ffff:ffff:ffff");
  EXPECT_EQ(l[2].timeout_ms, 7'200'000u);
}

TEST(DryRunBanBackend, ReBanRefreshesTheTimeoutInsteadOfKeepingTheOldOne) {
  DryRunBanBackend b;
  const std::vector<BanChange> first{BanChange::add(P("192.0.2.7"), 600)};
  ASSERT_TRUE(b.apply(first, kT0).ok());
  // 500 s later the same address is banned again for an hour: it must not expire at 600 s.
  const std::vector<BanChange> again{BanChange::add(P("192.0.2.7"), 3600)};
  ASSERT_TRUE(b.apply(again, kT0 + 500 * kMicrosPerSecond).ok());
  EXPECT_EQ(b.size(kT0 + 700 * kMicrosPerSecond), 1u);
  const auto l = listed(b, kT0 + 700 * kMicrosPerSecond);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].timeout_ms, 3'600'000u);
  EXPECT_EQ(l[0].expires_in_ms, 3'400'000u);
  // A shorter re-ban also sets exactly what it says (reconciliation relies on that).
  const std::vector<BanChange> shorter{BanChange::add(P("192.0.2.7"), 60)};
  ASSERT_TRUE(b.apply(shorter, kT0 + 700 * kMicrosPerSecond).ok());
  EXPECT_EQ(listed(b, kT0 + 700 * kMicrosPerSecond)[0].expires_in_ms, 60'000u);
}

TEST(DryRunBanBackend, ElementsExpireWhenNowReachesTheirTimeout) {
  DryRunBanBackend b;
  const std::vector<BanChange> changes{BanChange::add(P("192.0.2.7"), 10),
                                       BanChange::add(P("192.0.2.8"), 20)};
  ASSERT_TRUE(b.apply(changes, kT0).ok());
  EXPECT_EQ(b.size(kT0 + 10 * kMicrosPerSecond - 1), 2u);
  EXPECT_EQ(b.size(kT0 + 10 * kMicrosPerSecond), 1u);
  EXPECT_EQ(b.size(kT0 + 20 * kMicrosPerSecond), 0u);
}

TEST(DryRunBanBackend, UnbanDeletesAndUnbanOfAnAbsentTargetSucceeds) {
  DryRunBanBackend b;
  const std::vector<BanChange> add{BanChange::add(P("2001:db8:1::/64"), 60)};
  ASSERT_TRUE(b.apply(add, kT0).ok());
  const std::vector<BanChange> del{BanChange::remove(P("2001:db8:1::/64")),
                                   BanChange::remove(P("192.0.2.99"))};
  const BatchResult r = b.apply(del, kT0);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.applied, 2u);
  EXPECT_EQ(b.size(kT0), 0u);
  // Deleting a ban that has already expired is not an error either.
  ASSERT_TRUE(b.apply(std::vector<BanChange>{BanChange::add(P("192.0.2.1"), 1)}, kT0).ok());
  EXPECT_TRUE(b.apply(std::vector<BanChange>{BanChange::remove(P("192.0.2.1"))},
                      kT0 + 5 * kMicrosPerSecond)
                  .ok());
}

TEST(DryRunBanBackend, OverlappingElementIsRefusedAloneAfterTheBatchIsRetried) {
  DryRunBanBackend b;
  const std::vector<BanChange> changes{BanChange::add(P("10.0.0.0/24"), 60),
                                       BanChange::add(P("10.0.0.5"), 60),
                                       BanChange::add(P("192.0.2.1"), 60)};
  const BatchResult r = b.apply(changes, kT0);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.applied, 2u);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].index, 1u);
  EXPECT_EQ(r.failures[0].error, EEXIST);
  // First commit refused; the clean ones went together, the suspect alone.
  EXPECT_EQ(r.batches_sent, 3u);
  EXPECT_EQ(b.stats().batches_failed, 2u);
  EXPECT_EQ(b.stats().element_errors, 1u);
  EXPECT_EQ(b.size(kT0), 2u);
}

TEST(DryRunBanBackend, AConflictResolvedLaterInTheSameBatchSucceedsOnRetry) {
  // The kernel checks each message against the transaction so far: the /32 conflicts with the
  // /24 still present, the batch is refused, and the retry applies the /24's removal first.
  DryRunBanBackend b;
  ASSERT_TRUE(b.apply(std::vector<BanChange>{BanChange::add(P("10.0.0.0/24"), 60)}, kT0).ok());
  const std::vector<BanChange> changes{BanChange::add(P("10.0.0.5"), 60),
                                       BanChange::remove(P("10.0.0.0/24"))};
  const BatchResult r = b.apply(changes, kT0);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.batches_sent, 3u);
  const auto l = listed(b, kT0);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].prefix.to_string(), "10.0.0.5");
}

TEST(DryRunBanBackend, RepeatedTargetInOneBatchEndsAsItsLastChangeSays) {
  DryRunBanBackend b;
  const std::vector<BanChange> changes{
      BanChange::add(P("192.0.2.7"), 600), BanChange::add(P("192.0.2.7"), 1200),  // refreshed
      BanChange::add(P("192.0.2.8"), 600), BanChange::remove(P("192.0.2.8")),     // gone
      BanChange::add(P("192.0.2.9"), 600), BanChange::add(P("192.0.2.9/32"), 30)};
  const BatchResult r = b.apply(changes, kT0);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.applied, 6u);
  EXPECT_EQ(r.batches_sent, 1u);
  const auto l = listed(b, kT0);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].prefix.to_string(), "192.0.2.7");
  EXPECT_EQ(l[0].timeout_ms, 1'200'000u);
  EXPECT_EQ(l[1].prefix.to_string(), "192.0.2.9");
  EXPECT_EQ(l[1].timeout_ms, 30'000u);
  // A superseded change shares the fate of the one that superseded it.
  const std::vector<BanChange> conflicting{BanChange::add(P("192.0.2.0/24"), 60),
                                           BanChange::add(P("192.0.2.0/24"), 70)};
  const BatchResult c = b.apply(conflicting, kT0);
  ASSERT_EQ(c.failures.size(), 2u);
  EXPECT_EQ(c.failures[0].index, 0u);
  EXPECT_EQ(c.failures[0].error, EEXIST);
  EXPECT_EQ(c.failures[1].index, 1u);
}

TEST(DryRunBanBackend, ZeroTimeoutIsRefusedRatherThanBanningForever) {
  DryRunBanBackend b;
  const std::vector<BanChange> changes{BanChange::add(P("192.0.2.7"), 0),
                                       BanChange::add(P("192.0.2.8"), 5)};
  const BatchResult r = b.apply(changes, kT0);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].index, 0u);
  EXPECT_EQ(r.failures[0].error, EINVAL);
  EXPECT_EQ(b.size(kT0), 1u);
}

TEST(DryRunBanBackend, RemoveDeletesExactElementsAndFlushEmptiesEverything) {
  DryRunBanBackend b;
  const std::vector<BanChange> changes{BanChange::add(P("192.0.2.7"), 60),
                                       BanChange::add(P("2001:db8::/64"), 60)};
  ASSERT_TRUE(b.apply(changes, kT0).ok());
  auto l = listed(b, kT0);
  ASSERT_EQ(l.size(), 2u);
  const BatchResult r = b.remove(std::span(l.data(), 1), kT0);
  EXPECT_TRUE(r.ok());
  l = listed(b, kT0);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].prefix.to_string(), "2001:db8::/64");
  std::string error;
  EXPECT_TRUE(b.flush(error));
  EXPECT_EQ(b.size(kT0), 0u);
}

TEST(PrefixRange, RoundTripsPrefixesAndRejectsOtherRanges) {
  IpAddress first, last;
  prefix_range(P("192.0.2.128/25"), first, last);
  EXPECT_EQ(first.to_string(), "192.0.2.128");
  EXPECT_EQ(last.to_string(), "192.0.2.255");
  IpPrefix back;
  ASSERT_TRUE(range_to_prefix(first, last, back));
  EXPECT_EQ(back.to_string(), "192.0.2.128/25");
  prefix_range(P("0.0.0.0/0"), first, last);
  EXPECT_EQ(last.to_string(), "255.255.255.255");
  ASSERT_TRUE(range_to_prefix(first, last, back));
  EXPECT_EQ(back.length, 0);
  IpAddress a, z;
  IpAddress::parse("10.1.0.1", a);
  IpAddress::parse("10.1.0.9", z);
  EXPECT_FALSE(range_to_prefix(a, z, back));
  IpAddress::parse("10.1.0.0", a);
  IpAddress::parse("10.1.0.7", z);
  EXPECT_TRUE(range_to_prefix(a, z, back));
  EXPECT_EQ(back.to_string(), "10.1.0.0/29");
}

}  // namespace
}  // namespace authwall::actions
