// Rules engine throughput and memory (issue 4 targets: >= 10M events/s on one core for a
// five-rule configuration over 100k distinct keys; <= 200 bytes per tracked key with 1M keys).
//
// Events are built in place from precomputed keys (ip, user, session text), as the normalizer
// hands them over: one AuthEvent in cache, its fields pointing at stable strings. The key order
// is a random permutation, so table accesses are as scattered as real traffic from many
// clients. Simulated time advances per event.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdio>
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

RuleSet five_rules() {
  RuleSet set;
  std::vector<ConfigError> errors;
  if (!parse_rule_text(kFiveRules, "bench", set, errors)) std::abort();
  return set;
}

struct Workload {
  std::vector<IpAddress> ips;
  std::vector<std::string> users;
  std::vector<std::string> sessions;
  std::vector<std::uint32_t> order;  // key index per event
};

Workload make_workload(std::size_t keys, std::size_t events) {
  Workload w;
  std::mt19937_64 rng(12345);
  for (std::size_t k = 0; k < keys; ++k) {
    IpAddress ip;
    if (k % 4 == 3) {  // a quarter IPv6, spread over /64s
      ip.is_v4 = false;
      ip.bytes = {0x20, 0x01, 0x0d, 0xb8};
      for (std::size_t b = 4; b < 16; ++b) ip.bytes[b] = static_cast<std::uint8_t>(rng());
    } else {
      const std::uint32_t a = 0x0a000000u + static_cast<std::uint32_t>(k) * 7919u;
      ip.bytes = {static_cast<std::uint8_t>(a >> 24), static_cast<std::uint8_t>(a >> 16),
                  static_cast<std::uint8_t>(a >> 8), static_cast<std::uint8_t>(a)};
    }
    w.ips.push_back(ip);
    w.users.push_back("user" + std::to_string(rng() % keys) + "@example.org");
    w.sessions.push_back("mx1/" + std::to_string(1000 + k % 30000) + "/" + ip.to_string());
  }
  w.order.resize(events);
  for (auto& o : w.order) o = static_cast<std::uint32_t>(rng() % keys);
  return w;
}

// Fills `e` for key `k`: 60% auth failures (half Postfix SASL in a session, half Dovecot
// auth-process lines), 20% protocol abuse, 20% rejections.
void fill(const Workload& w, std::uint32_t k, normalize::AuthEvent& e) {
  using normalize::EventKind;
  using normalize::EventSource;
  e.ip = w.ips[k];
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
      e.user = w.users[k];
      e.session.assign(w.sessions[k]);
      break;
    case 3: case 4: case 5:
      e.kind = EventKind::auth_failure;
      e.source = EventSource::dovecot;
      e.service = {};
      e.reason = "password_mismatch";
      e.has_user = true;
      e.user = w.users[k];
      e.session.assign(w.sessions[k]);
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

// Throughput. Arg 0: simulated microseconds between events. 10000 (100 events/s of traffic
// over 100k keys): every key is seen every ~1000 s, windows keep sliding, almost no bans.
// 100: keys reach thresholds and get banned (the ban path with escalation lookups runs).
void BM_FiveRules_100kKeys(benchmark::State& state) {
  const UnixMicros step = state.range(0);
  static const Workload w = make_workload(100'000, 1 << 22);
  RuleEngineOptions options;
  options.seed = 99;
  RuleEngine engine(five_rules(), {}, {}, options);
  std::vector<BanDecision> out;
  out.reserve(64);
  normalize::AuthEvent e;
  UnixMicros now = 1'795'860'000LL * kMicrosPerSecond;
  std::size_t i = 0;
  // Warm up: every key tracked before timing.
  for (std::size_t j = 0; j < w.order.size(); ++j, now += step) {
    fill(w, w.order[j], e);
    engine.on_event(e, now, out);
    out.clear();
  }
  for (auto _ : state) {
    fill(w, w.order[i], e);
    engine.on_event(e, now, out);
    out.clear();
    now += step;
    if (++i == w.order.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  const RuleEngineStats s = engine.stats();
  state.counters["tracked_keys"] = static_cast<double>(s.tracked_keys);
  state.counters["decisions"] = static_cast<double>(s.decisions);
  state.counters["bytes_per_key"] =
      s.tracked_keys ? static_cast<double>(s.state_bytes) / static_cast<double>(s.tracked_keys) : 0;
}
BENCHMARK(BM_FiveRules_100kKeys)->Arg(10000)->Arg(100)->MinTime(2.0);

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
      UnixMicros now = 1'795'860'000LL * kMicrosPerSecond;
      std::uint32_t k = 0;
      while (engine.stats().tracked_keys < 1'000'000 && k < w.ips.size()) {
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
