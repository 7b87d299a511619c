// NftBanBackend against the real kernel. Every test runs in its own network namespace (see
// netns_fixture.h) and checks the result the way an operator would: `nft -j list table`.
#include "actions/nft_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include "actions/dry_run_backend.h"
#include "tests/actions/netns_fixture.h"

namespace authwall::actions {
namespace {

using authwall::testing::nft_view;
using authwall::testing::NftView;
using authwall::testing::run_command;
using authwall::testing::run_in_netns;

IpPrefix P(const char* text) {
  IpPrefix p;
  EXPECT_TRUE(IpPrefix::parse(text, p)) << text;
  return p;
}

bool has_flag(const NftView::Set& s, const char* flag) {
  return std::find(s.flags.begin(), s.flags.end(), flag) != s.flags.end();
}

void expect_layout(const NftView& v, const std::vector<std::string>& hooks) {
  ASSERT_TRUE(v.table_present);
  ASSERT_TRUE(v.sets.count("banned_ipv4"));
  ASSERT_TRUE(v.sets.count("banned_ipv6"));
  EXPECT_EQ(v.sets.at("banned_ipv4").type, "ipv4_addr");
  EXPECT_EQ(v.sets.at("banned_ipv6").type, "ipv6_addr");
  for (const char* name : {"banned_ipv4", "banned_ipv6"}) {
    EXPECT_TRUE(has_flag(v.sets.at(name), "interval")) << name;
    EXPECT_TRUE(has_flag(v.sets.at(name), "timeout")) << name;
  }
  EXPECT_EQ(v.chains.size(), hooks.size());
  for (const auto& hook : hooks) {
    ASSERT_TRUE(v.chains.count(hook)) << hook;
    const auto& c = v.chains.at(hook);
    EXPECT_EQ(c.type, "filter");
    EXPECT_EQ(c.hook, hook);
    EXPECT_EQ(c.prio, -10);
    EXPECT_EQ(c.policy, "accept");
    ASSERT_EQ(c.rules.size(), 2u) << hook;
    EXPECT_NE(c.rules[0].find(R"({"payload":{"protocol":"ip","field":"saddr"}},"right":"@banned_ipv4")"),
              std::string::npos)
        << c.rules[0];
    EXPECT_NE(c.rules[1].find(R"({"payload":{"protocol":"ip6","field":"saddr"}},"right":"@banned_ipv6")"),
              std::string::npos)
        << c.rules[1];
    for (const auto& r : c.rules) {
      EXPECT_NE(r.find(R"("left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"set":[25,110,143,465,587,993,995,4190]})"),
                std::string::npos)
          << r;
      EXPECT_NE(r.find(R"({"drop":null})"), std::string::npos) << r;
    }
  }
}

TEST(NftBanBackend, LayoutAndBansAreWhatNftListShows) {
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    NftBanBackend b(NftLayout{});
    const PrepareResult p = b.prepare();
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_TRUE(p.created_table);
    EXPECT_NE(b.refresh_mode(), RefreshMode::kProbe);
    const std::vector<BanChange> changes{BanChange::add(P("192.0.2.7"), 3600),
                                         BanChange::add(P("2001:db8:1::/64"), 7200)};
    const BatchResult r = b.apply(changes, 0);
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.applied, 2u);
    EXPECT_EQ(r.batches_sent, 1u);

    const NftView v = nft_view();
    expect_layout(v, {"input", "forward"});
    const auto* v4 = v.find("banned_ipv4", "192.0.2.7");
    ASSERT_NE(v4, nullptr);
    EXPECT_EQ(v4->timeout, 3600);
    EXPECT_GT(v4->expires, 3500);
    const auto* v6 = v.find("banned_ipv6", "2001:db8:1::/64");
    ASSERT_NE(v6, nullptr);
    EXPECT_EQ(v6->timeout, 7200);
    EXPECT_GT(v6->expires, 7100);
    EXPECT_EQ(v.sets.at("banned_ipv4").elems.size(), 1u);
    EXPECT_EQ(v.sets.at("banned_ipv6").elems.size(), 1u);
    // The probe's scratch set is gone.
    EXPECT_EQ(v.sets.size(), 2u);

    std::vector<SetElement> l;
    std::string error;
    ASSERT_TRUE(b.list(l, 0, error)) << error;
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].prefix.to_string(), "192.0.2.7");
    EXPECT_EQ(l[0].timeout_ms, 3'600'000u);
    EXPECT_GT(l[0].expires_in_ms, 3'500'000u);
    EXPECT_EQ(l[1].prefix.to_string(), "2001:db8:1::/64");
  });
}

TEST(NftBanBackend, PortsAllAndASingleHookDropEverythingFromBannedSources) {
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    NftLayout layout;
    layout.table = "aw_test";
    layout.all_ports = true;
    layout.hooks = {"input"};
    NftBanBackend b(layout);
    ASSERT_TRUE(b.prepare().ok);
    const NftView v = nft_view("aw_test");
    ASSERT_EQ(v.chains.size(), 1u);
    const auto& rules = v.chains.at("input").rules;
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules[0].find("dport"), std::string::npos) << rules[0];
    EXPECT_NE(rules[0].find("@banned_ipv4"), std::string::npos);
    // A reload with a port list: a new backend replaces the rules in place.
    layout.all_ports = false;
    layout.ports = {587, 25, 587};
    NftBanBackend reloaded(layout);
    ASSERT_TRUE(reloaded.prepare().ok);
    const NftView after = nft_view("aw_test");
    ASSERT_EQ(after.chains.at("input").rules.size(), 2u);
    EXPECT_NE(after.chains.at("input").rules[0].find(R"("right":{"set":[25,587]})"),
              std::string::npos)
        << after.chains.at("input").rules[0];
  });
}

void refresh_test(RefreshMode mode) {
  run_in_netns([mode] {
    NftBanBackend b(NftLayout{}, mode);
    ASSERT_TRUE(b.prepare().ok);
    if (mode != RefreshMode::kProbe) {
      EXPECT_EQ(b.refresh_mode(), mode);
    }
    ASSERT_TRUE(b.apply(std::vector<BanChange>{BanChange::add(P("192.0.2.7"), 600),
                                               BanChange::add(P("2001:db8:1::/64"), 600)},
                        0)
                    .ok());
    // Re-ban for longer: the timeout is refreshed, not left to run out at 600 s.
    const BatchResult r = b.apply(std::vector<BanChange>{BanChange::add(P("192.0.2.7"), 3600),
                                                         BanChange::add(P("2001:db8:1::/64"), 5000)},
                                  0);
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.batches_sent, 1u);
    NftView v = nft_view();
    ASSERT_NE(v.find("banned_ipv4", "192.0.2.7"), nullptr);
    EXPECT_EQ(v.find("banned_ipv4", "192.0.2.7")->timeout, 3600);
    EXPECT_GT(v.find("banned_ipv4", "192.0.2.7")->expires, 3500);
    ASSERT_NE(v.find("banned_ipv6", "2001:db8:1::/64"), nullptr);
    EXPECT_EQ(v.find("banned_ipv6", "2001:db8:1::/64")->timeout, 5000);
    // And for shorter: exactly what was asked (reconciliation sets remaining times this way).
    ASSERT_TRUE(b.apply(std::vector<BanChange>{BanChange::add(P("192.0.2.7"), 120)}, 0).ok());
    v = nft_view();
    ASSERT_NE(v.find("banned_ipv4", "192.0.2.7"), nullptr);
    EXPECT_EQ(v.find("banned_ipv4", "192.0.2.7")->timeout, 120);
    EXPECT_LE(v.find("banned_ipv4", "192.0.2.7")->expires, 120);
    EXPECT_EQ(v.sets.at("banned_ipv4").elems.size(), 1u);
  });
}

TEST(NftBanBackend, ReBanRefreshesTheTimeoutWithTheProbedStrategy) {
  AUTHWALL_REQUIRE_ROOT();
  // On this project's kernels (>= 6.10) the probe picks the in-place update.
  refresh_test(RefreshMode::kProbe);
}

TEST(NftBanBackend, ReBanRefreshesTheTimeoutWithDeleteAndAddForOldKernels) {
  AUTHWALL_REQUIRE_ROOT();
  refresh_test(RefreshMode::kDeleteAndAdd);
}

TEST(NftBanBackend, UnbanDeletesAndUnbanOfAnAbsentTargetSucceeds) {
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    NftBanBackend b(NftLayout{});
    ASSERT_TRUE(b.prepare().ok);
    ASSERT_TRUE(b.apply(std::vector<BanChange>{BanChange::add(P("192.0.2.7"), 600),
                                               BanChange::add(P("2001:db8:1::/64"), 600),
                                               BanChange::add(P("198.51.100.0/24"), 600)},
                        0)
                    .ok());
    // One of them was never banned: that must not abort the others (ENOENT would).
    const BatchResult r = b.apply(std::vector<BanChange>{BanChange::remove(P("192.0.2.7")),
                                                         BanChange::remove(P("203.0.113.9")),
                                                         BanChange::remove(P("2001:db8:1::/64"))},
                                  0);
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.applied, 3u);
    EXPECT_EQ(r.batches_sent, 1u);
    const NftView v = nft_view();
    EXPECT_EQ(v.find("banned_ipv4", "192.0.2.7"), nullptr);
    EXPECT_TRUE(v.sets.at("banned_ipv6").elems.empty());
    EXPECT_NE(v.find("banned_ipv4", "198.51.100.0/24"), nullptr);
    EXPECT_EQ(v.sets.at("banned_ipv4").elems.size(), 1u);
  });
}

TEST(NftBanBackend, KernelExpiresBansOnTheirTimeout) {
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    NftBanBackend b(NftLayout{});
    ASSERT_TRUE(b.prepare().ok);
    ASSERT_TRUE(b.apply(std::vector<BanChange>{BanChange::add(P("192.0.2.7"), 1),
                                               BanChange::add(P("192.0.2.8"), 3600)},
                        0)
                    .ok());
    std::vector<SetElement> l;
    std::string error;
    for (int i = 0; i < 100; ++i) {  // up to 10 s on a slow machine; normally ~1 s
      ASSERT_TRUE(b.list(l, 0, error)) << error;
      if (l.size() == 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].prefix.to_string(), "192.0.2.8");
    EXPECT_EQ(nft_view().find("banned_ipv4", "192.0.2.7"), nullptr);
  });
}

TEST(NftBanBackend, FlushedRulesetIsRebuiltAndARestartKeepsBans) {
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    {
      NftBanBackend b(NftLayout{});
      ASSERT_TRUE(b.prepare().ok);
      ASSERT_TRUE(b.apply(std::vector<BanChange>{BanChange::add(P("192.0.2.7"), 600)}, 0).ok());
    }
    {
      // Daemon restart: a new backend finds everything right and keeps the element.
      NftBanBackend b(NftLayout{});
      const PrepareResult p = b.prepare();
      ASSERT_TRUE(p.ok) << p.error;
      EXPECT_FALSE(p.created_table);
      EXPECT_EQ(p.repaired, 0u);
      const NftView v = nft_view();
      expect_layout(v, {"input", "forward"});
      EXPECT_NE(v.find("banned_ipv4", "192.0.2.7"), nullptr);
    }
    // Reboot: the ruleset is empty.
    ASSERT_EQ(std::system("nft flush ruleset"), 0);
    ASSERT_FALSE(nft_view().table_present);
    NftBanBackend b(NftLayout{});
    const PrepareResult p = b.prepare();
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_TRUE(p.created_table);
    EXPECT_EQ(p.repaired, 4u);  // two sets, two chains
    expect_layout(nft_view(), {"input", "forward"});
  });
}

TEST(NftBanBackend, WrongLayoutIsRepairedAndOtherTablesAreLeftAlone) {
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    // Someone else's table, and a damaged version of ours.
    ASSERT_EQ(std::system("nft -f - <<'EOF'\n"
                          "table inet other {\n"
                          "  chain input {\n"
                          "    type filter hook input priority 0;\n"
                          "    tcp dport 22 accept\n"
                          "  }\n"
                          "}\n"
                          "table inet authwall {\n"
                          "  set banned_ipv4 { type ipv6_addr; }\n"
                          "  set junk { type ipv4_addr; elements = { 10.9.9.9 }; }\n"
                          "  chain input {\n"
                          "    type filter hook input priority 0; policy drop;\n"
                          "    ip saddr @junk accept\n"
                          "  }\n"
                          "  chain stray {\n"
                          "    counter\n"
                          "  }\n"
                          "}\n"
                          "EOF"),
              0);
    const std::string other_before = run_command("nft -j list table inet other");
    NftBanBackend b(NftLayout{});
    const PrepareResult p = b.prepare();
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_FALSE(p.created_table);
    EXPECT_EQ(p.repaired, 4u);  // banned_ipv4 replaced, banned_ipv6, input replaced, forward
    const NftView v = nft_view();
    expect_layout(v, {"input", "forward"});
    EXPECT_EQ(v.sets.size(), 2u);
    EXPECT_EQ(run_command("nft -j list table inet other"), other_before);
  });
}

TEST(NftBanBackend, RefusedElementIsRetriedAloneAndTheRestIsApplied) {
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    NftBanBackend b(NftLayout{});
    ASSERT_TRUE(b.prepare().ok);
    const std::vector<BanChange> changes{BanChange::add(P("10.0.0.0/24"), 60),
                                         BanChange::add(P("10.0.0.5"), 60),
                                         BanChange::add(P("192.0.2.1"), 60)};
    const BatchResult r = b.apply(changes, 0);
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(r.applied, 2u);
    ASSERT_EQ(r.failures.size(), 1u);
    EXPECT_EQ(r.failures[0].index, 1u);
    EXPECT_EQ(r.failures[0].error, EEXIST);
    EXPECT_EQ(r.batches_sent, 3u);
    EXPECT_EQ(b.stats().batches_failed, 2u);
    EXPECT_EQ(b.stats().element_errors, 1u);
    const NftView v = nft_view();
    EXPECT_NE(v.find("banned_ipv4", "10.0.0.0/24"), nullptr);
    EXPECT_NE(v.find("banned_ipv4", "192.0.2.1"), nullptr);
    EXPECT_EQ(v.sets.at("banned_ipv4").elems.size(), 2u);
  });
}

// What the actions thread sends when bans overlap: a wider ban goes in after the narrower
// ones leave, and a held ban takes over after the wider one leaves, each in one transaction.
TEST(NftBanBackend, OverlappingBansTakeTurnsInOneCommitEach) {
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    NftBanBackend b(NftLayout{});
    ASSERT_TRUE(b.prepare().ok);
    const std::vector<std::vector<BanChange>> steps{
        {BanChange::add(P("10.0.0.5"), 600)},
        {BanChange::remove(P("10.0.0.5")), BanChange::add(P("10.0.0.0/24"), 60)},
        {BanChange::remove(P("10.0.0.0/24")), BanChange::add(P("10.0.0.5"), 540)},
    };
    const char* const expected[] = {"10.0.0.5", "10.0.0.0/24", "10.0.0.5"};
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const BatchResult r = b.apply(steps[i], 0);
      EXPECT_TRUE(r.ok()) << i;
      EXPECT_EQ(r.batches_sent, 1u) << i;
      const NftView v = nft_view();
      EXPECT_EQ(v.sets.at("banned_ipv4").elems.size(), 1u) << i;
      EXPECT_NE(v.find("banned_ipv4", expected[i]), nullptr) << i;
    }
    EXPECT_EQ(b.stats().batches_failed, 0u);
  });
}

TEST(NftBanBackend, KeepsTheSameBookkeepingAsTheDryRunBackend) {
  AUTHWALL_REQUIRE_ROOT();
  for (const RefreshMode mode : {RefreshMode::kProbe, RefreshMode::kDeleteAndAdd}) {
  SCOPED_TRACE(mode == RefreshMode::kProbe ? "probed refresh" : "delete-and-add refresh");
  run_in_netns([mode] {
    NftBanBackend kernel(NftLayout{}, mode);
    ASSERT_TRUE(kernel.prepare().ok);
    DryRunBanBackend memory;
    const std::vector<std::vector<BanChange>> batches{
        {BanChange::add(P("192.0.2.7"), 600), BanChange::add(P("2001:db8:1::/64"), 600),
         BanChange::add(P("198.51.100.0/24"), 900), BanChange::add(P("203.0.113.255"), 30)},
        {BanChange::add(P("192.0.2.7"), 1200), BanChange::add(P("198.51.100.77"), 60),
         BanChange::remove(P("2001:db8:1::/64")), BanChange::add(P("2001:db8:2::/48"), 100)},
        {BanChange::add(P("198.51.100.77"), 60), BanChange::remove(P("198.51.100.0/24")),
         BanChange::remove(P("10.1.1.1")), BanChange::add(P("255.255.255.255"), 10),
         BanChange::add(P("::"), 10)},
        // The same target several times in one batch: the last change decides.
        {BanChange::add(P("192.0.2.50"), 600), BanChange::add(P("192.0.2.50"), 1200),
         BanChange::remove(P("192.0.2.7")), BanChange::add(P("192.0.2.7"), 300),
         BanChange::add(P("192.0.2.51"), 60), BanChange::remove(P("192.0.2.51")),
         BanChange::add(P("192.0.2.0/24"), 60), BanChange::add(P("192.0.2.0/24"), 70)},
    };
    for (const auto& batch : batches) {
      const BatchResult a = kernel.apply(batch, 0);
      const BatchResult c = memory.apply(batch, 0);
      EXPECT_EQ(a.applied, c.applied);
      EXPECT_EQ(a.batches_sent, c.batches_sent);
      ASSERT_EQ(a.failures.size(), c.failures.size());
      for (std::size_t i = 0; i < a.failures.size(); ++i) {
        EXPECT_EQ(a.failures[i].index, c.failures[i].index);
        EXPECT_EQ(a.failures[i].error, c.failures[i].error);
      }
    }
    std::vector<SetElement> lk, lm;
    std::string error;
    ASSERT_TRUE(kernel.list(lk, 0, error)) << error;
    ASSERT_TRUE(memory.list(lm, 0, error));
    ASSERT_EQ(lk.size(), lm.size());
    for (std::size_t i = 0; i < lk.size(); ++i) {
      EXPECT_EQ(lk[i].first, lm[i].first) << i;
      EXPECT_EQ(lk[i].last, lm[i].last) << i;
      EXPECT_EQ(lk[i].prefix, lm[i].prefix) << i;
      EXPECT_EQ(lk[i].timeout_ms, lm[i].timeout_ms) << i;
    }
    EXPECT_EQ(kernel.stats().elements_applied, memory.stats().elements_applied);
    EXPECT_EQ(kernel.stats().element_errors, memory.stats().element_errors);
  });
  }
}

TEST(NftBanBackend, ListReadsForeignRangesAndRemoveDeletesThem) {
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    NftBanBackend b(NftLayout{});
    ASSERT_TRUE(b.prepare().ok);
    ASSERT_TRUE(b.apply(std::vector<BanChange>{BanChange::add(P("192.0.2.7"), 600)}, 0).ok());
    ASSERT_EQ(std::system("nft add element inet authwall banned_ipv4 "
                          "'{ 10.1.0.1-10.1.0.9 timeout 1h, 10.2.0.0/16 }'"),
              0);
    std::vector<SetElement> l;
    std::string error;
    ASSERT_TRUE(b.list(l, 0, error)) << error;
    ASSERT_EQ(l.size(), 3u);
    EXPECT_EQ(l[0].first.to_string(), "10.1.0.1");
    EXPECT_EQ(l[0].last.to_string(), "10.1.0.9");
    EXPECT_FALSE(l[0].is_prefix);
    EXPECT_EQ(l[0].timeout_ms, 3'600'000u);
    EXPECT_TRUE(l[1].is_prefix);
    EXPECT_EQ(l[1].prefix.to_string(), "10.2.0.0/16");
    EXPECT_EQ(l[1].timeout_ms, 0u);  // nft added it without a timeout
    EXPECT_EQ(l[2].prefix.to_string(), "192.0.2.7");
    const BatchResult r = b.remove(std::span(l.data(), 2), 0);
    EXPECT_TRUE(r.ok()) << r.error;
    ASSERT_TRUE(b.list(l, 0, error));
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].prefix.to_string(), "192.0.2.7");
    // flush() empties both sets and leaves the layout.
    ASSERT_TRUE(b.flush(error)) << error;
    const NftView v = nft_view();
    expect_layout(v, {"input", "forward"});
    EXPECT_TRUE(v.sets.at("banned_ipv4").elems.empty());
  });
}

TEST(NftBanBackend, MissingCapNetAdminIsOneClearErrorAtStartUp) {
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    ASSERT_TRUE(authwall::testing::drop_net_admin());
    NftBanBackend b(NftLayout{});
    const PrepareResult p = b.prepare();
    EXPECT_FALSE(p.ok);
    EXPECT_TRUE(p.permission_denied);
    EXPECT_NE(p.error.find("CAP_NET_ADMIN"), std::string::npos) << p.error;
  });
}

TEST(NftBanBackend, BadLayoutConfigurationIsReportedNotSent) {
  NftLayout layout;
  layout.hooks = {"input", "output"};
  NftBanBackend b(layout);
  const PrepareResult p = b.prepare();
  EXPECT_FALSE(p.ok);
  EXPECT_NE(p.error.find("\"output\""), std::string::npos) << p.error;
  NftLayout no_ports;
  no_ports.ports.clear();
  EXPECT_FALSE(NftBanBackend(no_ports).prepare().ok);
  // Not prepared: applying reports an error instead of crashing.
  const BatchResult r = b.apply(std::vector<BanChange>{BanChange::add(P("192.0.2.1"), 5)}, 0);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.error.empty());
}

}  // namespace
}  // namespace authwall::actions
