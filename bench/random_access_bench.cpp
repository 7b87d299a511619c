// The machine's bound for the rules engine (issue 4): how many random cache lines one core can
// read and write per second, by working-set size, with the same software prefetching the
// engine uses. A rules engine whose tables hold W bytes and that touches L random lines per
// event cannot exceed (this rate at W) / L events per second, however little it computes.
//
//   build/bench/random_access_bench
//
// Arg 0: working set in MiB. Arg 1: prefetch distance in accesses (0 = none: one miss at a
// time, the latency bound).
#include <benchmark/benchmark.h>

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

void BM_RandomLineUpdate(benchmark::State& state) {
  const std::size_t bytes = static_cast<std::size_t>(state.range(0)) << 20;
  const std::size_t distance = static_cast<std::size_t>(state.range(1));
  void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  ::madvise(map, bytes, MADV_HUGEPAGE);  // as the engine's tables (rules/key_table.cpp)
  auto* mem = static_cast<unsigned char*>(map);
  std::memset(mem, 1, bytes);
  const std::size_t lines = bytes / 64;
  constexpr std::size_t kIndices = 1u << 22;
  std::vector<std::uint32_t> index(kIndices);
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (auto& v : index) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v = static_cast<std::uint32_t>(x % lines);
  }
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    // 1024 read-modify-writes of random lines per iteration.
    for (std::size_t n = 0; n < 1024; ++n, i = (i + 1) & (kIndices - 1)) {
      if (distance != 0) __builtin_prefetch(mem + 64 * std::size_t{index[(i + distance) & (kIndices - 1)]});
      unsigned char& b = mem[64 * std::size_t{index[i]}];
      sum += b;
      ++b;
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * 1024);
  ::munmap(map, bytes);
}
BENCHMARK(BM_RandomLineUpdate)
    ->ArgNames({"MiB", "prefetch"})
    ->Args({1, 16})
    ->Args({4, 16})
    ->Args({8, 16})
    ->Args({12, 16})
    ->Args({16, 16})
    ->Args({24, 16})
    ->Args({32, 0})
    ->Args({32, 16})
    ->Args({32, 64})
    ->Args({128, 16})
    ->MinTime(0.5);

}  // namespace
