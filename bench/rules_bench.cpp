// Rules engine throughput and memory (issue 4 targets: >= 10M events/s on one core for a
// five-rule configuration over 100k distinct keys; <= 200 bytes per tracked key with 1M keys).
//
// Events are built in place from precomputed keys (ip, user, session text), as the normalizer
// hands them over: one AuthEvent in cache, its fields pointing at stable strings. The key order
// is a random permutation, so table accesses are as scattered as real traffic from many
// clients. Simulated time advances per event.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "rules/rule_config.h"
#include "rules/rule_engine.h"

namespace {

using namespace authwall;
using namespace authwall::rules;

constexpr const char* kFiveRules = R"(
rules:
  - name: mail-auth-bruteforce
    match: { kind: auth_failure }
    key: ip
    window: 10m
    threshold: 5
    ban: { duration: 1h, factor: 2, max: 7d }
  - name: password-spray
    match: { kind: auth_failure }
    key: ip
    distinct: user
    window: 1h
    threshold: 10
    ban: { duration: 24h }
  - name: account-attack
    match: { kind: auth_failure, not: { reason: disconnect_auth_failed } }
    key: user
    window: 1h
    threshold: 30
    ban: { duration: 1h }
  - name: smtp-protocol-abuse
    match: { kind: protocol_abuse, service: [smtp, submission, submissions] }
    window: 10m
    threshold: 10
    ban: { duration: 1h }
  - name: rejected-flood
    match: { kind: rejected }
    window: 1h
    threshold: 100
    ban: { duration: 6h }
)";

// The five rules above, or the rule file named by RULES_BENCH_FILE (to measure your own rules
// on the same workload).
RuleSet five_rules() {
  RuleSet set;
  std::vector<ConfigError> errors;
  const char* file = std::getenv("RULES_BENCH_FILE");
  const bool ok = file != nullptr && *file != '\0' ? load_rule_file(file, set, errors)
                                                  : parse_rule_text(kFiveRules, "bench", set, errors);
  if (!ok) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::abort();
  }
  return set;
}

// One client: what its events carry, packed so building an event touches one or two lines.
struct Client {
  IpAddress ip;
  std::uint8_t user_len = 0;
  std::uint8_t session_len = 0;
  char user[14];
  char session[40];
};

struct Workload {
  std::vector<Client> clients;
  std::vector<std::uint32_t> order;  // client index per event
};

Workload make_workload(std::size_t keys, std::size_t events) {
  Workload w;
  std::mt19937_64 rng(12345);
  w.clients.resize(keys);
  for (std::size_t k = 0; k < keys; ++k) {
    Client& c = w.clients[k];
    if (k % 4 == 3) {  // a quarter IPv6, spread over /64s
      c.ip.is_v4 = false;
      c.ip.bytes = {0x20, 0x01, 0x0d, 0xb8};
      for (std::size_t b = 4; b < 16; ++b) c.ip.bytes[b] = static_cast<std::uint8_t>(rng());
    } else {
      const std::uint32_t a = 0x0a000000u + static_cast<std::uint32_t>(k) * 7919u;
      c.ip.bytes = {static_cast<std::uint8_t>(a >> 24), static_cast<std::uint8_t>(a >> 16),
                    static_cast<std::uint8_t>(a >> 8), static_cast<std::uint8_t>(a)};
    }
    // Appended piecewise: g++ 12 warns falsely (-Wrestrict) on "literal" + std::string.
    std::string user = "u";
    user += std::to_string(rng() % keys);
    std::string session = "mx1/";
    session += std::to_string(1000 + k % 30000);
    session += '/';
    session += c.ip.to_string();
    c.user_len = static_cast<std::uint8_t>(std::min(user.size(), sizeof c.user));
    std::memcpy(c.user, user.data(), c.user_len);
    c.session_len = static_cast<std::uint8_t>(std::min(session.size(), sizeof c.session));
    std::memcpy(c.session, session.data(), c.session_len);
  }
  w.order.resize(events);
  for (auto& o : w.order) o = static_cast<std::uint32_t>(rng() % keys);
  return w;
}

// Fills `e` for client `k`: 60% auth failures (half Postfix SASL in a session, half Dovecot
// auth-process lines with a session), 20% protocol abuse, 20% rejections.
void fill(const Workload& w, std::uint32_t k, normalize::AuthEvent& e) {
  using normalize::EventKind;
  using normalize::EventSource;
  const Client& c = w.clients[k];
  e.ip = c.ip;
  e.has_user = false;
  e.mechanism.clear();
  e.session.clear();
  switch (k % 10) {
    case 0: case 1: case 2:
      e.kind = EventKind::auth_failure;
      e.source = EventSource::postfix;
      e.service = "submission";
      e.reason = "sasl_failed";
      e.mechanism.assign("LOGIN");
      e.has_user = true;
      e.user = std::string_view(c.user, c.user_len);
      e.session.assign(std::string_view(c.session, c.session_len));
      break;
    case 3: case 4: case 5:
      e.kind = EventKind::auth_failure;
      e.source = EventSource::dovecot;
      e.service = {};
      e.reason = "password_mismatch";
      e.has_user = true;
      e.user = std::string_view(c.user, c.user_len);
      e.session.assign(std::string_view(c.session, c.session_len));
      break;
    case 6: case 7:
      e.kind = EventKind::protocol_abuse;
      e.source = EventSource::postfix;
      e.service = "smtp";
      e.reason = "pipelining";
      break;
    default:
      e.kind = EventKind::rejected;
      e.source = EventSource::postfix;
      e.service = "smtp";
      e.reason = "relay_denied";
      break;
  }
}

constexpr UnixMicros kStart = 1'795'860'000LL * kMicrosPerSecond;

// Throughput. Arg 0: simulated microseconds between events. 10000 (100 events/s over 100k
// keys): each key is seen every ~1000 s, windows keep sliding, bans are rare. 100: keys reach
// their thresholds within the windows and get banned (escalation lookups in memory).
// Arg 1: 1 = on_events with kChunk events per call, 0 = on_event one at a time.
// Arg 2: distinct clients (100k, or 1k to see the cost with every table in cache).
// Arg 3: 1 = the engine alone: each chunk of events is built with the timer paused, as the
// normalizer hands a batch over (in cache); 0 = building the events is timed too.
void BM_FiveRules_100kKeys(benchmark::State& state) {
  const UnixMicros step = state.range(0);
  const bool batched = state.range(1) != 0;
  const std::size_t keys = static_cast<std::size_t>(state.range(2));
  const bool engine_only = state.range(3) != 0;
  static std::map<std::size_t, Workload> workloads;
  auto it = workloads.find(keys);
  if (it == workloads.end()) it = workloads.emplace(keys, make_workload(keys, 1 << 22)).first;
  const Workload& w = it->second;
  RuleEngineOptions options;
  options.seed = 99;
  RuleEngine engine(five_rules(), {}, {}, options);
  std::vector<BanDecision> out;
  out.reserve(1024);
  constexpr std::size_t kChunk = 256;  // events per call, e.g. a few recvmmsg batches
  std::vector<normalize::AuthEvent> events(kChunk);
  std::vector<UnixMicros> nows(kChunk);
  UnixMicros now = kStart;
  std::size_t i = 0;
  const auto build_chunk = [&] {
    for (std::size_t j = 0; j < kChunk; ++j) {
      // Fetch the client of a later event early, so the benchmark's own lookups overlap.
      __builtin_prefetch(&w.clients[w.order[(i + 16) % w.order.size()]]);
      fill(w, w.order[i], events[j]);
      nows[j] = now;
      now += step;
      if (++i == w.order.size()) i = 0;
    }
  };
  const auto evaluate_chunk = [&] {
    if (batched) {
      engine.on_events(events, nows, out);
    } else {
      for (std::size_t j = 0; j < kChunk; ++j) engine.on_event(events[j], nows[j], out);
    }
    out.clear();
  };
  // Warm up: every key tracked and the tables grown before timing. RULES_BENCH_WARMUP=N warms
  // up with N events instead (shorter runs under callgrind).
  std::size_t warmup = w.order.size();
  if (const char* n = std::getenv("RULES_BENCH_WARMUP"); n != nullptr && *n != '\0') {
    warmup = std::strtoull(n, nullptr, 10);
  }
  for (std::size_t j = 0; j < warmup / kChunk; ++j) {
    build_chunk();
    evaluate_chunk();
  }
  // Timed by hand with the steady clock (UseManualTime): PauseTiming/ResumeTiming read the
  // process CPU clock, a system call, and cost ~0.5 us of every ~25 us chunk.
  for (auto _ : state) {
    if (engine_only) build_chunk();
    const auto start = std::chrono::steady_clock::now();
    if (!engine_only) build_chunk();
    evaluate_chunk();
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kChunk));
  const RuleEngineStats s = engine.stats();
  state.counters["tracked_keys"] = static_cast<double>(s.tracked_keys);
  state.counters["decisions"] = static_cast<double>(s.decisions);
  state.counters["table_bytes_per_key"] =
      s.tracked_keys ? static_cast<double>(s.state_bytes) / static_cast<double>(s.tracked_keys) : 0;
}
BENCHMARK(BM_FiveRules_100kKeys)
    ->ArgNames({"step_us", "batched", "keys", "engine_only"})
    ->Args({10000, 1, 100'000, 1})
    ->Args({100, 1, 100'000, 1})
    ->Args({10000, 0, 100'000, 1})
    ->Args({10000, 1, 1000, 1})
    ->Args({1'000'000, 1, 1000, 1})
    ->Args({100'000, 1, 10'000, 1})
    ->Args({20'000, 1, 50'000, 1})
    ->Args({10000, 1, 100'000, 0})
    ->UseManualTime()
    ->MinTime(2.0);

// Building the events alone (the share of the numbers above that is the benchmark's own).
void BM_EventGenerationOnly(benchmark::State& state) {
  static const Workload w = make_workload(100'000, 1 << 22);
  normalize::AuthEvent e;
  std::size_t i = 0;
  for (auto _ : state) {
    fill(w, w.order[i], e);
    benchmark::DoNotOptimize(e);
    if (++i == w.order.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EventGenerationOnly)->MinTime(1.0);

long resident_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

// Memory: the five-rule engine at its default cap of 1M tracked keys, fed distinct clients
// until the cap is reached. Reports the RSS growth per tracked key (tables, index, growth
// slack and the deduplicator's fixed tables all included).
void BM_Memory_1MKeys(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    const Workload w = make_workload(1'000'000, 0);
    state.ResumeTiming();
    const long before = resident_bytes();
    {
      RuleEngineOptions options;
      options.seed = 5;
      options.max_tracked_keys = 1'000'000;
      RuleEngine engine(five_rules(), {}, {}, options);
      std::vector<BanDecision> out;
      normalize::AuthEvent e;
      UnixMicros now = kStart;
      std::uint32_t k = 0;
      while (engine.stats().tracked_keys < 1'000'000 && k < w.clients.size()) {
        fill(w, k++, e);
        engine.on_event(e, now, out);
        out.clear();
        now += 1000;
      }
      const long after = resident_bytes();
      const RuleEngineStats s = engine.stats();
      state.counters["tracked_keys"] = static_cast<double>(s.tracked_keys);
      state.counters["rss_bytes_per_key"] =
          static_cast<double>(after - before) / static_cast<double>(s.tracked_keys);
      state.counters["table_bytes_per_key"] =
          static_cast<double>(s.state_bytes) / static_cast<double>(s.tracked_keys);
      state.counters["evictions"] = static_cast<double>(s.evictions);
    }
  }
}
BENCHMARK(BM_Memory_1MKeys)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
