// KeyTable (the per-rule open-addressing table) against a reference map under random churn, and
// the engine's promise of no allocation per event once its tables have grown.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <cstdlib>
#include <new>
#include <random>
#include <unordered_map>

#include "rules/key_table.h"
#include "rules/rule_config.h"
#include "rules/rule_engine.h"

namespace {
std::atomic<std::uint64_t> g_allocations{0};
}  // namespace

// Counts every allocation in this test program (the engine test below asserts none happen).
// All non-aligned forms are replaced together, so memory from any `new` reaches a matching
// `delete` (sanitizer builds check that pairing).
namespace {
void* counted_alloc(std::size_t n) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
// The tables' line-aligned blocks (rules/key_table.cpp) come from the aligned forms.
void* operator new(std::size_t n, std::align_val_t a) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t align = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace authwall;
using namespace authwall::rules;

namespace {

// A 32-bit value kept in an entry's window slots (the table hands them over zeroed).
std::uint32_t value_of(KeyEntry* e) {
  std::uint32_t v;
  std::memcpy(&v, e->slots(), 4);
  return v;
}
void set_value(KeyEntry* e, std::uint32_t v) { std::memcpy(e->slots(), &v, 4); }

TEST(KeyTable, MatchesAReferenceMapUnderChurn) {
  KeyTable table(8, 5000, 16);
  std::unordered_map<std::uint64_t, std::uint32_t> ref;  // fp -> value stored in the slots
  std::mt19937_64 rng(7);
  // Few distinct fingerprints with colliding low bits, so probe runs form and erasures shift.
  auto fp_of = [](std::uint64_t i) { return (i * 0x9e3779b97f4a7c15ULL) | 1 | ((i % 7) << 32); };
  for (int step = 0; step < 200000; ++step) {
    const std::uint64_t fp = fp_of(rng() % 3000);
    KeyEntry* e = table.find(fp);
    const auto it = ref.find(fp);
    ASSERT_EQ(e != nullptr, it != ref.end()) << "step " << step;
    if (e != nullptr) {
      ASSERT_EQ(value_of(e), it->second);
      if (rng() % 3 == 0) {
        table.erase(e);
        ref.erase(it);
      } else {
        set_value(e, static_cast<std::uint32_t>(step));
        it->second = value_of(e);
      }
    } else if (table.size() < table.max_entries()) {
      KeyEntry* n = table.insert(fp, 0);
      set_value(n, static_cast<std::uint32_t>(step));
      ref[fp] = value_of(n);
    }
    ASSERT_EQ(table.size(), ref.size());
  }
  for (const auto& [fp, v] : ref) {
    KeyEntry* e = table.find(fp);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(value_of(e), v);
  }
}

TEST(KeyTable, VictimIsTheLeastRecentlySeenOfTheSample) {
  KeyTable table(4, 100, 16);
  for (std::uint32_t i = 1; i <= 8; ++i) table.insert(i * 1000003ULL, 100 - i);  // key 8 oldest
  bool idle = false;
  KeyEntry* v = table.pick_victim(8, [](const KeyEntry&) { return false; }, idle);
  ASSERT_NE(v, nullptr);
  EXPECT_FALSE(idle);
  EXPECT_EQ(v->fp, 8 * 1000003ULL);
  // An idle entry is preferred over an older live one.
  v = table.pick_victim(8, [](const KeyEntry& e) { return e.last_seen == 95; }, idle);
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(idle);
  EXPECT_EQ(v->last_seen, 95u);
}

TEST(RuleEngine, NoAllocationPerEventInSteadyState) {
  RuleSet rules;
  std::vector<ConfigError> errors;
  ASSERT_TRUE(parse_rule_text(R"(
rules:
  - { name: brute, match: { kind: auth_failure }, window: 10m, threshold: 5, ban: { duration: 1h } }
  - { name: spray, match: { kind: auth_failure }, distinct: user, window: 1h, threshold: 10, ban: { duration: 1d } }
  - { name: per-user, match: { kind: auth_failure }, key: user, window: 1h, threshold: 30, ban: { duration: 1h } }
  - { name: abuse, match: { kind: protocol_abuse }, window: 10m, threshold: 10, ban: { duration: 1h } }
  - { name: rejects, match: { kind: rejected }, window: 1h, threshold: 100, ban: { duration: 1h } }
)", "inline", rules, errors));
  RuleEngineOptions options;
  options.seed = 1;
  // A cap well below the number of keys: the second round keeps evicting and inserting, in
  // tables that have reached their final size.
  options.max_tracked_keys = 5000;
  RuleEngine engine(rules, {}, {}, options);
  std::vector<BanDecision> out;
  out.reserve(16);
  constexpr int kKeys = 20000;
  std::vector<std::string> users;
  for (int i = 0; i < kKeys; ++i) users.push_back("user" + std::to_string(i));
  normalize::AuthEvent e;
  e.source = normalize::EventSource::custom;  // no dedup bookkeeping to warm up
  e.has_user = true;
  auto run = [&](UnixMicros t0) {
    for (int i = 0; i < kKeys; ++i) {
      e.kind = static_cast<normalize::EventKind>(i % 5 == 1 ? 0 : i % 5);  // no auth_success
      e.ip.bytes = {10, static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
                    static_cast<std::uint8_t>(i)};
      e.user = users[static_cast<std::size_t>(i)];
      engine.on_event(e, t0 + i * 1000, out);
      out.clear();
    }
  };
  run(0);  // grows the tables to their working size
  const std::uint64_t before = g_allocations.load();
  run(60 * kMicrosPerSecond);
  EXPECT_EQ(g_allocations.load() - before, 0u);
  const RuleEngineStats stats = engine.stats();
  EXPECT_EQ(stats.decisions, 0u);  // bans allocate (their target text); none here
  EXPECT_GT(stats.evictions, 10000u);
  EXPECT_LE(stats.tracked_keys, 5000u);
}
}  // namespace
