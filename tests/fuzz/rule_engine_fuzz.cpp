// libFuzzer target for the rules stage: arbitrary bytes decoded into a stream of AuthEvents
// (kinds, sources, services, reasons, sessions, attempt counts, users, addresses from small
// pools so keys collide and windows fill; time that mostly advances and sometimes goes back)
// through eight rules covering every window kind, key kind and prefix (two pairs sharing a
// table), with never_ban and
// trusted_proxies entries inside the attackers' prefixes and a key cap small enough to evict.
//
// Invariants checked beyond "no crash, no sanitizer report":
//   - on_event one at a time and on_events in batches give the same decisions (rules/rule_engine.h
//     promises identical results), with the small key cap, and with one the stream never
//     reaches (where on_events evaluates a batch kind group by kind group) against an engine
//     with a table per rule; and so does an engine with reference_windows (ring windows
//     as full 32-bit times instead of 16-bit offsets that move with long gaps — exact while no
//     line is more than 7.6 h older than the newest, which the stream keeps to — and distinct
//     windows scanned on every event instead of only when their oldest name may have expired);
//   - every decision's target contains the address of the event that produced it, has the
//     rule's prefix length (or full length when narrowed), a duration within [1 s, max];
//   - no decision's target contains a never_ban or trusted_proxies address;
//   - tracked keys never exceed the cap.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_address.h"
#include "rules/rule_config.h"
#include "rules/rule_engine.h"

namespace {

using namespace authwall;
using namespace authwall::rules;
using normalize::AuthEvent;
using normalize::EventKind;
using normalize::EventSource;

constexpr const char* kRules = R"(
rules:
  - name: brute
    match: { kind: auth_failure }
    prefix: { ipv4: 24, ipv6: 64 }
    window: 10m
    threshold: 3
    ban: { duration: 1h, factor: 2, max: 1d }
  - name: spray
    match: { kind: auth_failure, not: { reason: disconnect_auth_failed } }
    distinct: user
    window: 1h
    threshold: 3
    reset_on_success: true
    ban: { duration: 2h }
  - name: per-user
    match: { kind: auth_failure }
    key: user
    window: 1h
    threshold: 4
    ban: { duration: 30m, factor: 3, max: 6h }
  - name: pair
    match: { kind: [auth_failure, protocol_abuse], service: [smtp, submission, ~] }
    key: ip+user
    prefix: { ipv4: 16, ipv6: 48 }
    window: 5m
    threshold: 2
    reset_on_success: true
    ban: { duration: 10m }
  - name: flood
    match: { kind: rejected }
    window: 1h
    threshold: 70
    ban: { duration: 6h }
  - name: scanners
    match: { kind: no_auth_disconnect, source: postfix }
    prefix: { ipv4: 28 }
    window: 90s
    threshold: 2
    ban: { duration: 5m }
  # Shares brute's table (same key, prefixes and match), with its own reset on success.
  - name: brute-spray
    match: { kind: auth_failure }
    prefix: { ipv4: 24, ipv6: 64 }
    distinct: user
    window: 30m
    threshold: 2
    reset_on_success: true
    ban: { duration: 45m }
  # Shares per-user's table from further down the list (decisions still in rule order).
  - name: per-user-slow
    match: { kind: auth_failure }
    key: user
    window: 6h
    threshold: 6
    ban: { duration: 2h }
)";

struct Fixture {
  RuleSet rules;
  std::vector<IpPrefix> never_ban;
  std::vector<IpPrefix> proxies;
  std::vector<IpAddress> pool;
  Fixture() {
    std::vector<ConfigError> errors;
    if (!parse_rule_text(kRules, "fuzz", rules, errors)) std::abort();
    // Protected entries inside prefixes the pool's attackers share.
    never_ban = {prefix("192.0.2.10/32"), prefix("2001:db8:1::10/128")};
    proxies = {prefix("198.51.100.2/32")};
    for (const char* a : {"192.0.2.10", "192.0.2.11", "192.0.2.200", "192.0.3.1", "198.51.100.2",
                          "198.51.100.3", "198.51.7.9", "203.0.113.5", "203.0.113.17",
                          "2001:db8:1::10", "2001:db8:1::66", "2001:db8:1:2::1", "2001:db8:2::1",
                          "::ffff:203.0.113.9", "0.0.0.0", "::"}) {
      IpAddress ip;
      if (!IpAddress::parse(a, ip)) std::abort();
      pool.push_back(ip);
    }
  }
  static IpPrefix prefix(std::string_view text) {
    IpPrefix p;
    if (!IpPrefix::parse(text, p)) std::abort();
    return p;
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

constexpr std::string_view kServices[] = {"", "smtp", "submission", "imap", "pop3"};
constexpr std::string_view kReasons[] = {"sasl_failed", "password_mismatch", "unknown_user",
                                         "disconnect_auth_failed", "plaintext_refused",
                                         "proxy_dest_auth_failed", "pipelining", "relay_denied"};
constexpr std::string_view kUsers[] = {"alice", "bob", "carol", "", "dave,192.0.2.11", "root"};

// One event per 6 input bytes.
struct Decoded {
  AuthEvent event;
  UnixMicros now = 0;
};

std::vector<Decoded> decode(const std::uint8_t* data, std::size_t size) {
  const Fixture& f = fixture();
  std::vector<Decoded> out;
  UnixMicros now = UnixMicros{1795780800} * kMicrosPerSecond;
  UnixMicros newest = now;
  for (std::size_t i = 0; i + 6 <= size && out.size() < 4096; i += 6) {
    const std::uint8_t* b = data + i;
    Decoded d;
    AuthEvent& e = d.event;
    e.kind = static_cast<EventKind>(b[0] % 5);
    e.source = static_cast<EventSource>((b[0] >> 3) % 3);
    e.ip = f.pool[b[1] % f.pool.size()];
    e.service = kServices[(b[1] >> 4) % std::size(kServices)];
    e.reason = kReasons[b[2] % std::size(kReasons)];
    const std::size_t u = (b[2] >> 3) % (std::size(kUsers) + 1);
    e.has_user = u < std::size(kUsers);
    if (e.has_user) e.user = kUsers[u];
    if ((b[3] & 7) != 0) {
      const std::string session = "s" + std::to_string(b[3] & 7);
      e.session.assign(session);
    }
    if ((b[3] & 8) != 0) e.mechanism.assign("PLAIN");
    e.attempts = (b[3] >> 4) % 6;  // 0 is not produced by the normalizers, but must not break
    // Time: mostly forward by up to ~4 h, now and then by up to ~34 h (gaps longer than the
    // 16-bit offsets of ring windows), sometimes back a little (out-of-order lines), but never
    // more than 6 h behind the newest line.
    std::int64_t step = static_cast<std::int64_t>(b[4]) * 4 * (b[5] & 0x0f);
    if ((b[5] & 0x70) == 0x70) step *= 8;
    now += (b[5] & 0x80) != 0 ? -step * kMicrosPerSecond / 8 : step * kMicrosPerSecond;
    newest = std::max(newest, now);
    now = std::max(now, newest - 6 * 3600 * kMicrosPerSecond);
    d.now = now;
    out.push_back(d);
  }
  return out;
}

std::string describe(const BanDecision& d) {
  return std::string(d.rule.view()) + " " + d.target.to_string() + " " +
         std::to_string(d.duration_seconds) + " " + std::to_string(d.offence) +
         (d.narrowed ? " narrowed" : "");
}

void check_decision(const Fixture& f, const RuleEngine& engine, const BanDecision& d,
                    const AuthEvent& e, std::size_t cap) {
  if (!d.target.contains(e.ip)) std::abort();
  const RuleSpec& spec = f.rules.rules.at(d.rule_index);
  if (d.rule.view() != spec.name || engine.rule_name(d.rule_index) != spec.name) std::abort();
  const int full = e.ip.is_v4 ? 32 : 128;
  const int want = d.narrowed ? full : (e.ip.is_v4 ? spec.prefix_v4 : spec.prefix_v6);
  if (d.target.length != want) std::abort();
  if (d.duration_seconds < 1 || d.duration_seconds > spec.ban.max_seconds) std::abort();
  for (const auto& p : f.never_ban) {
    if (d.target.contains(p.network) || p.contains(e.ip)) std::abort();
  }
  for (const auto& p : f.proxies) {
    if (d.target.contains(p.network) || p.contains(e.ip)) std::abort();
  }
  if (engine.stats().tracked_keys > cap) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Fixture& f = fixture();
  const std::vector<Decoded> events = decode(data, size);
  RuleEngineOptions options;
  options.seed = 7;
  options.max_tracked_keys = 12;  // small: eviction and idle reuse happen
  options.dedup.session_capacity = 8;
  options.dedup.tie_capacity = 8;
  RuleEngine one(f.rules, f.never_ban, f.proxies, options);
  RuleEngine batched(f.rules, f.never_ban, f.proxies, options);
  RuleEngineOptions wide_options = options;
  wide_options.reference_windows = true;
  RuleEngine wide(f.rules, f.never_ban, f.proxies, wide_options);
  // Room for every key: no eviction, so on_events may reorder a batch by kind group, and
  // tables shared by rules must answer as a table per rule does (with a key cap the two
  // differ in what they evict).
  RuleEngineOptions roomy_options = options;
  roomy_options.max_tracked_keys = 1u << 20;
  RuleEngine roomy_batched(f.rules, f.never_ban, f.proxies, roomy_options);
  roomy_options.share_tables = false;
  RuleEngine roomy_one(f.rules, f.never_ban, f.proxies, roomy_options);

  std::vector<std::string> a, b, c, roomy_a, roomy_b;
  std::vector<BanDecision> out;
  for (const Decoded& d : events) {
    out.clear();
    one.on_event(d.event, d.now, out);
    for (const auto& x : out) {
      check_decision(f, one, x, d.event, options.max_tracked_keys);
      a.push_back(describe(x));
    }
    out.clear();
    wide.on_event(d.event, d.now, out);
    for (const auto& x : out) c.push_back(describe(x));
    out.clear();
    roomy_one.on_event(d.event, d.now, out);
    for (const auto& x : out) roomy_a.push_back(describe(x));
  }
  if (a != c) std::abort();
  // The same stream in batches of varying size (the daemon's recvmmsg batches).
  std::vector<AuthEvent> batch;
  std::vector<UnixMicros> nows;
  std::size_t i = 0;
  while (i < events.size()) {
    const std::size_t n = 1 + (i * 7 + size) % 40;
    batch.clear();
    nows.clear();
    for (std::size_t j = i; j < events.size() && j < i + n; ++j) {
      batch.push_back(events[j].event);
      nows.push_back(events[j].now);
    }
    out.clear();
    batched.on_events(batch, nows, out);
    for (const auto& x : out) b.push_back(describe(x));
    out.clear();
    roomy_batched.on_events(batch, nows, out);
    for (const auto& x : out) roomy_b.push_back(describe(x));
    i += batch.size();
  }
  if (a != b) std::abort();
  if (roomy_a != roomy_b) std::abort();
  one.sweep(events.empty() ? 0 : events.back().now + 86400 * kMicrosPerSecond, 64);
  return 0;
}
