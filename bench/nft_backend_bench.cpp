// NftBanBackend throughput against the real kernel: bans applied per second in batches, the
// latency of a one-ban commit, and restoring 100k bans from the ban store at start-up.
//
// Needs root. The program moves itself into a fresh network namespace (unshare(CLONE_NEWNET))
// before touching nftables, so the machine's own ruleset is never involved; running it under
// `unshare -n` as well is harmless.
//   sudo build/bench/nft_backend_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>
#include <sched.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "actions/nft_backend.h"
#include "actions/reconcile.h"
#include "state/ban_store.h"

namespace {

using namespace authwall;
using namespace authwall::actions;

bool enter_netns() {
  static const bool ok = unshare(CLONE_NEWNET) == 0;
  return ok;
}

// n distinct targets: even ones IPv4 addresses in 10.0.0.0/8, odd ones IPv6 /64s in
// 2001:db8::/32, offset by `base` so successive calls can make fresh ones.
std::vector<IpPrefix> targets(std::size_t n, std::uint32_t base = 0) {
  std::vector<IpPrefix> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t k = base + static_cast<std::uint32_t>(i);
    IpAddress a;
    if (i % 2 == 0) {
      a.is_v4 = true;
      a.bytes = {10, static_cast<std::uint8_t>(k >> 16), static_cast<std::uint8_t>(k >> 8),
                 static_cast<std::uint8_t>(k)};
      out.push_back(IpPrefix::of(a, 32));
    } else {
      a.is_v4 = false;
      a.bytes = {0x20, 0x01, 0x0d, 0xb8, static_cast<std::uint8_t>(k >> 24),
                 static_cast<std::uint8_t>(k >> 16), static_cast<std::uint8_t>(k >> 8),
                 static_cast<std::uint8_t>(k)};
      out.push_back(IpPrefix::of(a, 64));
    }
  }
  return out;
}

std::vector<BanChange> bans(const std::vector<IpPrefix>& t, std::uint32_t timeout) {
  std::vector<BanChange> out;
  out.reserve(t.size());
  for (const auto& p : t) out.push_back(BanChange::add(p, timeout));
  return out;
}

NftBanBackend* backend(RefreshMode mode) {
  static std::unique_ptr<NftBanBackend> probed, delete_add;
  auto& slot = mode == RefreshMode::kDeleteAndAdd ? delete_add : probed;
  if (!slot) {
    NftLayout layout;
    layout.table = mode == RefreshMode::kDeleteAndAdd ? "authwall_bench_da" : "authwall_bench";
    slot = std::make_unique<NftBanBackend>(layout, mode);
    if (!slot->prepare().ok) slot.reset();
  }
  return slot.get();
}

bool setup(benchmark::State& state, NftBanBackend*& b, RefreshMode mode = RefreshMode::kProbe) {
  if (!enter_netns()) {
    state.SkipWithError("needs root: cannot unshare a network namespace");
    return false;
  }
  b = backend(mode);
  if (b == nullptr) {
    state.SkipWithError("nftables backend could not be prepared");
    return false;
  }
  return true;
}

// New bans in batches of N (sets emptied between iterations, outside the timing).
void BM_ApplyNewBans(benchmark::State& state) {
  NftBanBackend* b;
  if (!setup(state, b)) return;
  const auto changes = bans(targets(static_cast<std::size_t>(state.range(0))), 3600);
  std::string error;
  for (auto _ : state) {
    state.PauseTiming();
    b->flush(error);
    state.ResumeTiming();
    const BatchResult r = b->apply(changes, 0);
    if (!r.ok()) state.SkipWithError("batch refused");
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ApplyNewBans)->Arg(100)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Re-bans of targets already in the set (each one must refresh its timeout).
void refresh(benchmark::State& state, RefreshMode mode) {
  NftBanBackend* b;
  if (!setup(state, b, mode)) return;
  const auto t = targets(static_cast<std::size_t>(state.range(0)));
  std::string error;
  b->flush(error);
  b->apply(bans(t, 600), 0);
  std::uint32_t timeout = 601;
  for (auto _ : state) {
    state.PauseTiming();
    const auto changes = bans(t, timeout++);
    state.ResumeTiming();
    if (!b->apply(changes, 0).ok()) state.SkipWithError("batch refused");
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
void BM_RefreshBans_InPlace(benchmark::State& state) { refresh(state, RefreshMode::kProbe); }
void BM_RefreshBans_DeleteAndAdd(benchmark::State& state) {
  refresh(state, RefreshMode::kDeleteAndAdd);
}
BENCHMARK(BM_RefreshBans_InPlace)->Arg(10'000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RefreshBans_DeleteAndAdd)->Arg(10'000)->Unit(benchmark::kMillisecond)->UseRealTime();

// One ban per commit with `prefill` bans already active: the kernel part of the ban latency
// (message -> acknowledged element), as p50/p99 over the commits of all iterations.
// Kernels with the binary-search array for interval sets (6.18+) rebuild that array from the
// whole set on every commit that changes it, so this grows with the number of active bans;
// batching is what keeps throughput up (BM_ApplyNewBans).
void BM_SingleBanLatency(benchmark::State& state) {
  NftBanBackend* b;
  if (!setup(state, b)) return;
  std::string error;
  b->flush(error);
  const auto prefill = static_cast<std::size_t>(state.range(0));
  // Prefill with IPv4 addresses (the set a single-address ban lands in) in one batch.
  std::vector<BanChange> fill;
  for (std::size_t i = 0; i < prefill; ++i) {
    IpAddress a;
    a.bytes = {11, static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
               static_cast<std::uint8_t>(i)};
    fill.push_back(BanChange::add(IpPrefix::of(a, 32), 3600));
  }
  if (!b->apply(fill, 0).ok()) {
    state.SkipWithError("prefill refused");
    return;
  }
  std::vector<double> us;
  std::vector<BanChange> one(1);
  // The same address every time (first a new ban, then re-bans refreshing its timeout), so the
  // set stays at prefill + 1 elements however many iterations run.
  IpAddress probe;
  probe.bytes = {12, 0, 0, 1};
  std::uint32_t timeout = 3600;
  for (auto _ : state) {
    one[0] = BanChange::add(IpPrefix::of(probe, 32), timeout++);
    const auto t0 = std::chrono::steady_clock::now();
    if (!b->apply(one, 0).ok()) state.SkipWithError("batch refused");
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                     .count());
  }
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[us.size() * 99 / 100];
  state.counters["active_bans"] = static_cast<double>(prefill);
}
BENCHMARK(BM_SingleBanLatency)->Arg(0)->Arg(1'000)->Arg(2'000)->Arg(5'000)->Arg(8'000)->Arg(10'000)->Arg(100'000)
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// Start-up after a reboot: 100k active bans in the store, empty sets; reconcile() reads the
// store, lists the sets and restores every ban with its remaining time in one batch.
void BM_Restore100kBans(benchmark::State& state) {
  NftBanBackend* b;
  if (!setup(state, b)) return;
  char tmpl[] = "/tmp/authwall-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  const std::string dir = tmpl;
  std::string error;
  auto store = state::BanStore::open(dir + "/state.db", error);
  const UnixMicros now = 1'790'000'000LL * kMicrosPerSecond;
  std::vector<state::BanRecord> records;
  for (const auto& t : targets(100'000)) {
    records.push_back({t, "bench", state::BanSource::kAuto, now, now + 3600 * kMicrosPerSecond});
  }
  if (!store || !store->record_bans(records)) {
    state.SkipWithError("cannot fill the ban store");
    std::filesystem::remove_all(dir);
    return;
  }
  for (auto _ : state) {
    state.PauseTiming();
    b->flush(error);
    state.ResumeTiming();
    const ReconcileResult r = reconcile(*store, *b, now);
    if (!r.ok || r.restored != 100'000) state.SkipWithError("restore incomplete");
  }
  state.SetItemsProcessed(state.iterations() * 100'000);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Restore100kBans)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

}  // namespace
