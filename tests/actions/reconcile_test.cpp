// Start-up reconciliation (actions/reconcile.h): the ban store wins over whatever the sets hold.
#include "actions/reconcile.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>

#include "actions/dry_run_backend.h"
#include "actions/nft_backend.h"
#include "tests/actions/netns_fixture.h"
#include "tests/temp_dir.h"

namespace authwall::actions {
namespace {

using authwall::testing::nft_view;
using authwall::testing::run_in_netns;
using state::BanRecord;
using state::BanSource;
using state::BanStore;

constexpr UnixMicros kS = kMicrosPerSecond;
constexpr UnixMicros kT0 = 1'790'000'000LL * kS;

IpPrefix P(const char* text) {
  IpPrefix p;
  EXPECT_TRUE(IpPrefix::parse(text, p)) << text;
  return p;
}

class ReconcileTest : public ::testing::Test {
 protected:
  std::unique_ptr<BanStore> open_store() {
    std::string error;
    auto s = BanStore::open(dir_ + "/state.db", error);
    EXPECT_NE(s, nullptr) << error;
    return s;
  }
  authwall::testing::TempDir tmp_{"authwall-reconcile"};
  std::string dir_ = tmp_.path().string();
};

TEST_F(ReconcileTest, RestoresActiveBansDropsExpiredAndRemovesForeignElements) {
  auto store = open_store();
  ASSERT_TRUE(store->record_bans(std::vector<BanRecord>{
      {P("192.0.2.7"), "r", BanSource::kAuto, kT0, kT0 + 3600 * kS},
      {P("2001:db8:1::/64"), "r", BanSource::kAuto, kT0, kT0 + 600 * kS},
      {P("198.51.100.1"), "r", BanSource::kAuto, kT0, kT0 + 10 * kS},  // over by kT0 + 100 s
  }));
  DryRunBanBackend backend;
  // The sets hold a foreign element and one of ours with a stale timeout.
  ASSERT_TRUE(backend
                  .apply(std::vector<BanChange>{BanChange::add(P("203.0.113.0/24"), 9999),
                                                BanChange::add(P("192.0.2.7"), 5)},
                         kT0)
                  .ok());
  const ReconcileResult r = reconcile(*store, backend, kT0 + 100 * kS);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.restored, 2u);
  EXPECT_EQ(r.expired_dropped, 1u);
  EXPECT_EQ(r.foreign_removed, 1u);
  EXPECT_EQ(r.failed, 0u);
  std::vector<SetElement> l;
  std::string error;
  ASSERT_TRUE(backend.list(l, kT0 + 100 * kS, error));
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].prefix.to_string(), "192.0.2.7");
  EXPECT_EQ(l[0].expires_in_ms, 3500'000u);  // the remaining time, not the stale 5 s
  EXPECT_EQ(l[1].prefix.to_string(), "2001:db8:1::/64");
  EXPECT_EQ(l[1].expires_in_ms, 500'000u);
}

TEST(InsideAnother, FindsNestedPrefixesPerFamily) {
  const std::vector<BanRecord> bans{
      {P("198.51.100.7"), "r", BanSource::kAuto, kT0, kT0},     // inside the /24, /16 and /0
      {P("198.51.0.0/16"), "r", BanSource::kAuto, kT0, kT0},    // inside the /0
      {P("198.51.100.0/24"), "r", BanSource::kAuto, kT0, kT0},  // inside the /16 and /0
      {P("198.52.0.1"), "r", BanSource::kAuto, kT0, kT0},       // outside the /16, inside the /0
      {P("2001:db8:1::/64"), "r", BanSource::kAuto, kT0, kT0},
      {P("2001:db8:1::5"), "r", BanSource::kAuto, kT0, kT0},    // inside the /64
      {P("2001:db8:2::5"), "r", BanSource::kAuto, kT0, kT0},
      {P("0.0.0.0/0"), "r", BanSource::kAuto, kT0, kT0},        // IPv4 only: no IPv6 inside it
  };
  const std::vector<bool> inside = inside_another(bans);
  EXPECT_EQ(inside, (std::vector<bool>{true, true, true, true, false, true, false, false}));
}

TEST_F(ReconcileTest, BansInsideAWiderActiveBanAreHeldNotAdded) {
  auto store = open_store();
  ASSERT_TRUE(store->record_bans(std::vector<BanRecord>{
      {P("198.51.100.0/24"), "manual", BanSource::kManual, kT0, kT0 + 600 * kS},
      {P("198.51.100.7"), "r", BanSource::kAuto, kT0, kT0 + 7 * 86400 * kS},
      {P("192.0.2.7"), "r", BanSource::kAuto, kT0, kT0 + 3600 * kS},
  }));
  DryRunBanBackend backend;  // refuses overlapping elements, as the kernel's interval sets do
  const ReconcileResult r = reconcile(*store, backend, kT0 + 100 * kS);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.restored, 2u);
  EXPECT_EQ(r.failed, 0u);
  ASSERT_EQ(r.held.size(), 1u);
  EXPECT_EQ(r.held[0].to_string(), "198.51.100.7");
  std::vector<SetElement> l;
  std::string error;
  ASSERT_TRUE(backend.list(l, kT0 + 100 * kS, error));
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].prefix.to_string(), "192.0.2.7");
  EXPECT_EQ(l[1].prefix.to_string(), "198.51.100.0/24");
}

TEST_F(ReconcileTest, RemainingTimeIsRoundedUpToWholeSeconds) {
  auto store = open_store();
  ASSERT_TRUE(store->record_ban({P("192.0.2.7"), "r", BanSource::kAuto, kT0, kT0 + 1500'000}));
  DryRunBanBackend backend;
  const ReconcileResult r = reconcile(*store, backend, kT0 + 1000'000);  // 0.5 s left
  EXPECT_TRUE(r.ok);
  std::vector<SetElement> l;
  std::string error;
  ASSERT_TRUE(backend.list(l, kT0 + 1000'000, error));
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].timeout_ms, 1000u);
}

TEST_F(ReconcileTest, RestartRebootAndCrashAreRepairedInTheKernel) {
  AUTHWALL_REQUIRE_ROOT();
  const std::string path = dir_ + "/state.db";
  run_in_netns([path] {
    std::string error;
    auto store = BanStore::open(path, error);
    ASSERT_NE(store, nullptr) << error;
    // Wall-clock `now`: the kernel's timeouts run on real time.
    const UnixMicros now =
        std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count();
    {
      NftBanBackend b(NftLayout{});
      ASSERT_TRUE(b.prepare().ok);
      ASSERT_TRUE(store->record_bans(std::vector<BanRecord>{
          {P("192.0.2.7"), "r", BanSource::kAuto, now, now + 3600 * kS},
          {P("2001:db8:1::/64"), "r", BanSource::kAuto, now, now + 1800 * kS},
          {P("198.51.100.5"), "r", BanSource::kAuto, now, now + 600 * kS}}));
      ASSERT_TRUE(b.apply(std::vector<BanChange>{BanChange::add(P("192.0.2.7"), 3600),
                                                 BanChange::add(P("2001:db8:1::/64"), 1800),
                                                 BanChange::add(P("198.51.100.5"), 600)},
                          now)
                      .ok());
      // kill -9 between the SQLite write and the kernel commit, both ways: a ban stored but
      // never committed, and an unban stored but never committed.
      ASSERT_TRUE(store->record_ban({P("203.0.113.77"), "r", BanSource::kManual, now,
                                     now + 900 * kS}));
      ASSERT_TRUE(store->record_unban(P("198.51.100.5"), BanSource::kManual, now));
    }
    // Someone adds an element to our set by hand.
    ASSERT_EQ(std::system("nft add element inet authwall banned_ipv4 '{ 10.66.0.0/16 }'"), 0);

    // Restart: a new backend object.
    NftBanBackend b(NftLayout{});
    ASSERT_TRUE(b.prepare().ok);
    ReconcileResult r = reconcile(*store, b, now + 5 * kS);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.restored, 3u);
    EXPECT_EQ(r.foreign_removed, 2u);  // the hand-made /16 and the unbanned address
    auto v = nft_view();
    ASSERT_EQ(v.sets.at("banned_ipv4").elems.size(), 2u);
    ASSERT_NE(v.find("banned_ipv4", "192.0.2.7"), nullptr);
    EXPECT_EQ(v.find("banned_ipv4", "192.0.2.7")->timeout, 3595);
    ASSERT_NE(v.find("banned_ipv4", "203.0.113.77"), nullptr);
    EXPECT_EQ(v.find("banned_ipv4", "203.0.113.77")->timeout, 895);
    ASSERT_NE(v.find("banned_ipv6", "2001:db8:1::/64"), nullptr);

    // Reboot: empty ruleset; prepare rebuilds, reconcile restores every ban in one batch.
    ASSERT_EQ(std::system("nft flush ruleset"), 0);
    NftBanBackend after_reboot(NftLayout{});
    ASSERT_TRUE(after_reboot.prepare().ok);
    r = reconcile(*store, after_reboot, now + 10 * kS);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.restored, 3u);
    EXPECT_EQ(r.foreign_removed, 0u);
    // One commit for the layout, one for all the bans.
    EXPECT_EQ(after_reboot.stats().batches_committed, 2u);
    v = nft_view();
    EXPECT_EQ(v.sets.at("banned_ipv4").elems.size(), 2u);
    EXPECT_EQ(v.sets.at("banned_ipv6").elems.size(), 1u);
  });
}

}  // namespace
}  // namespace authwall::actions
