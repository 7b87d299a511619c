#include "app/daemon.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>
#include <unordered_map>

#include "actions/dry_run_backend.h"
#include "actions/firewall_backend.h"
#include "actions/nft_backend.h"
#include "actions/reconcile.h"
#include "app/config.h"
#include "app/control_socket.h"
#include "app/http_server.h"
#include "app/log.h"
#include "app/metrics.h"
#include "common/duration.h"
#include "ingest/message_sink.h"
#include "ingest/syslog_parser.h"
#include "ingest/tcp_listener.h"
#include "ingest/udp_listener.h"
#include "normalize/custom_patterns.h"
#include "normalize/normalizer.h"
#include "rules/hash.h"
#include "rules/rule_engine.h"
#include "state/ban_store.h"
#include "state/offence_store.h"

namespace authwall::app {

namespace asio = boost::asio;

// ---------------------------------------------------------------------------------------------
// BanBook and formatting

void BanBook::put(const ActiveBan& ban) {
  std::lock_guard lock(mu_);
  const Key k = key(ban.target);
  const auto [it, inserted] = bans_.insert_or_assign(k, ban);
  if (inserted) ++lengths_[{k.v6, k.length}];
}

void BanBook::forget_locked(std::map<Key, ActiveBan>::iterator it) {
  const auto l = lengths_.find({it->first.v6, it->first.length});
  if (l != lengths_.end() && --l->second == 0) lengths_.erase(l);
  bans_.erase(it);
}

void BanBook::erase(const IpPrefix& target) {
  std::lock_guard lock(mu_);
  const auto it = bans_.find(key(target));
  if (it != bans_.end()) forget_locked(it);
}

std::optional<ActiveBan> BanBook::find(const IpPrefix& target, UnixMicros now) const {
  std::lock_guard lock(mu_);
  const auto it = bans_.find(key(target));
  if (it == bans_.end() || it->second.expires <= now) return std::nullopt;
  return it->second;
}

std::optional<ActiveBan> BanBook::covering(const IpPrefix& target, UnixMicros now) const {
  std::lock_guard lock(mu_);
  std::optional<ActiveBan> best;
  const bool v6 = !target.network.is_v4;
  for (const auto& [family_length, n] : lengths_) {
    if (family_length.first != v6 || family_length.second > target.length) continue;
    const auto it = bans_.find(key(IpPrefix::of(target.network, family_length.second)));
    if (it == bans_.end() || it->second.expires <= now) continue;
    if (!best || it->second.expires > best->expires) best = it->second;
  }
  return best;
}

std::vector<ActiveBan> BanBook::inside(const IpPrefix& target, UnixMicros now) const {
  std::lock_guard lock(mu_);
  std::vector<ActiveBan> out;
  const Key first = key(target);
  for (auto it = bans_.upper_bound(first); it != bans_.end(); ++it) {
    const ActiveBan& b = it->second;
    if (it->first.v6 != first.v6 || !target.contains(b.target.network)) break;
    if (b.expires > now && b.target.length > target.length) out.push_back(b);
  }
  return out;
}

std::vector<ActiveBan> BanBook::list(UnixMicros now) const {
  std::vector<ActiveBan> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [k, b] : bans_) {
      if (b.expires > now) out.push_back(b);
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const ActiveBan& a, const ActiveBan& b) { return a.expires < b.expires; });
  return out;
}

std::size_t BanBook::count(UnixMicros now) const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [k, b] : bans_) n += b.expires > now ? 1 : 0;
  return n;
}

void BanBook::prune(UnixMicros now) {
  std::lock_guard lock(mu_);
  for (auto it = bans_.begin(); it != bans_.end();) {
    if (it->second.expires <= now) {
      auto next = std::next(it);
      forget_locked(it);
      it = next;
    } else {
      ++it;
    }
  }
}

namespace {

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::int64_t remaining_seconds(const ActiveBan& b, UnixMicros now) {
  return std::max<std::int64_t>(0, (b.expires - now + kMicrosPerSecond - 1) / kMicrosPerSecond);
}

}  // namespace

std::string format_bans_json(const std::vector<ActiveBan>& bans, UnixMicros now) {
  std::string out = "[";
  bool first = true;
  for (const auto& b : bans) {
    out += first ? "\n  {" : ",\n  {";
    first = false;
    out += "\"target\": ";
    append_json_string(out, b.target.to_string());
    out += ", \"rule\": ";
    append_json_string(out, b.rule);
    out += ", \"expires\": ";
    // Whole seconds: what an operator reads, and what the kernel's timeout resolution gives.
    append_json_string(out, format_rfc3339(b.expires - b.expires % kMicrosPerSecond));
    out += ", \"created\": ";
    append_json_string(out, format_rfc3339(b.created - b.created % kMicrosPerSecond));
    out += ", \"remaining_seconds\": " + std::to_string(remaining_seconds(b, now));
    out += ", \"offence\": " + std::to_string(b.offence);
    out += '}';
  }
  out += bans.empty() ? "]\n" : "\n]\n";
  return out;
}

std::string format_bans_table(const std::vector<ActiveBan>& bans, UnixMicros now) {
  if (bans.empty()) return "no active bans\n";
  std::size_t target_width = 6;
  std::size_t rule_width = 4;
  for (const auto& b : bans) {
    target_width = std::max(target_width, b.target.to_string().size());
    rule_width = std::max(rule_width, b.rule.size());
  }
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-*s  %-*s  %-20s  %s\n", static_cast<int>(target_width), "TARGET",
                static_cast<int>(rule_width), "RULE", "EXPIRES", "REMAINING");
  out += line;
  for (const auto& b : bans) {
    std::snprintf(line, sizeof line, "%-*s  %-*s  %-20s  %s\n", static_cast<int>(target_width),
                  b.target.to_string().c_str(), static_cast<int>(rule_width), b.rule.c_str(),
                  format_rfc3339(b.expires - b.expires % kMicrosPerSecond).c_str(),
                  format_duration(std::max<std::int64_t>(1, remaining_seconds(b, now))).c_str());
    out += line;
  }
  return out;
}

namespace {

UnixMicros wall_now() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------------------------
// Metrics the pipeline updates

constexpr std::size_t kParseErrorCount = 8;  // SyslogParseError values, ok included
constexpr std::size_t kSourceCount = 3;      // EventSource
constexpr std::size_t kKindCount = 5;        // EventKind

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

struct PipelineMetrics {
  explicit PipelineMetrics(MetricsRegistry& r) : registry(r) {
    for (const auto t : {ingest::Transport::udp, ingest::Transport::tcp}) {
      received[static_cast<std::size_t>(t)] =
          &r.counter("authwall_messages_received_total",
                     "Syslog messages received (datagrams, TCP frames) and handed to the parser",
                     {{"transport", std::string(ingest::to_string(t))}});
    }
    dropped_parse = &r.counter("authwall_messages_dropped_total",
                               "Messages dropped before normalization, by reason",
                               {{"reason", "parse_error"}});
    for (std::size_t e = 1; e < kParseErrorCount; ++e) {
      parse_errors[e] = &r.counter(
          "authwall_parse_errors_total", "Messages that were not valid syslog, by parser error",
          {{"reason", std::string(ingest::to_string(static_cast<ingest::SyslogParseError>(e)))}});
    }
    for (std::size_t s = 0; s < kSourceCount; ++s) {
      const std::string source(normalize::to_string(static_cast<normalize::EventSource>(s)));
      unrecognized[s] = &r.counter(
          "authwall_unrecognized_lines_total",
          "Lines from a known daemon that looked like a failure but matched no template",
          {{"source", source}});
      for (std::size_t k = 0; k < kKindCount; ++k) {
        events[s][k] = &r.counter(
            "authwall_events_total", "Authentication events recognised, by source and kind",
            {{"source", source},
             {"kind", std::string(normalize::to_string(static_cast<normalize::EventKind>(k)))}});
      }
    }
    decisions_dropped = &r.counter(
        "authwall_ban_decisions_dropped_total",
        "Ban decisions dropped because the actions queue was full");
    ban_latency = &r.histogram(
        "authwall_ban_latency_seconds",
        "From receiving the message that crossed a threshold to the ban being committed to the "
        "firewall",
        latency_buckets());
    firewall_errors = &r.counter("authwall_firewall_errors_total",
                                 "Firewall changes that failed (batch or element errors)");
    firewall_batches = &r.counter("authwall_firewall_batches_total",
                                  "Batches committed to the firewall backend");
    unbans = &r.counter("authwall_unbans_total", "Bans lifted by `authwall unban`");
    redundant = &r.counter("authwall_bans_redundant_total",
                           "Ban decisions already covered by a longer active ban (no change)");
    reloads_ok = &r.counter("authwall_config_reloads_total", "SIGHUP configuration reloads",
                            {{"result", "success"}});
    reloads_failed = &r.counter("authwall_config_reloads_total", "SIGHUP configuration reloads",
                                {{"result", "failure"}});
    store_errors = &r.counter("authwall_state_errors_total",
                              "Writes to the state database that failed");
  }
  Counter& bans_for_rule(const std::string& rule) {
    return registry.counter("authwall_bans_total", "Bans committed, by rule", {{"rule", rule}});
  }

  MetricsRegistry& registry;
  std::array<Counter*, 2> received{};
  Counter* dropped_parse = nullptr;
  std::array<Counter*, kParseErrorCount> parse_errors{};
  std::array<Counter*, kSourceCount> unrecognized{};
  std::array<std::array<Counter*, kKindCount>, kSourceCount> events{};
  Counter* decisions_dropped = nullptr;
  Histogram* ban_latency = nullptr;
  Counter* firewall_errors = nullptr;
  Counter* firewall_batches = nullptr;
  Counter* unbans = nullptr;
  Counter* redundant = nullptr;
  Counter* reloads_ok = nullptr;
  Counter* reloads_failed = nullptr;
  Counter* store_errors = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Rule state: per rule, engines sharded by client address

// RuleSpec has no operator== (and its file/line must not count): the definition is what the
// engine compiles. Keep in step with rules/rule_config.h.
bool same_match(const rules::MatchSpec& a, const rules::MatchSpec& b) {
  if (a.kind_mask != b.kind_mask || a.source_mask != b.source_mask || a.ip != b.ip) return false;
  for (std::size_t i = 0; i < rules::kMatchFieldCount; ++i) {
    const auto& x = a.fields[i];
    const auto& y = b.fields[i];
    if (x.has_value() != y.has_value()) return false;
    if (x && (x->values != y->values || x->allow_null != y->allow_null)) return false;
  }
  return true;
}

bool same_definition(const rules::RuleSpec& a, const rules::RuleSpec& b) {
  if (a.name != b.name || !same_match(a.match, b.match)) return false;
  if (a.exclude.has_value() != b.exclude.has_value()) return false;
  if (a.exclude && !same_match(*a.exclude, *b.exclude)) return false;
  return a.key == b.key && a.prefix_v4 == b.prefix_v4 && a.prefix_v6 == b.prefix_v6 &&
         a.window_seconds == b.window_seconds && a.threshold == b.threshold &&
         a.distinct_user == b.distinct_user && a.reset_on_success == b.reset_on_success &&
         a.ban.duration_seconds == b.ban.duration_seconds && a.ban.factor == b.ban.factor &&
         a.ban.max_seconds == b.ban.max_seconds;
}

struct LockedEngine {
  std::mutex mu;
  std::unique_ptr<rules::RuleEngine> engine;
};

struct RuleUnit {
  rules::RuleSpec spec;
  std::vector<std::unique_ptr<LockedEngine>> shards;

  // Whether the event can change this rule's state. An event of a kind the rule does not match
  // is skipped before taking the shard lock: it could only reach the engine's attempt
  // de-duplication, which looks at auth_failure events alone (and a rule that matches
  // auth_failure sees all of them), or a success reset.
  bool wants(const normalize::AuthEvent& e) const noexcept {
    const std::uint32_t bit = 1u << static_cast<unsigned>(e.kind);
    if (spec.match.kind_mask == 0 || (spec.match.kind_mask & bit) != 0) return true;
    return spec.reset_on_success && e.kind == normalize::EventKind::auth_success;
  }

  LockedEngine& engine_for(const IpAddress& ip) noexcept {
    if (shards.size() == 1) return *shards[0];
    // The rule's own prefix: every address of one /64 (one key) meets the same engine.
    const IpPrefix p = IpPrefix::of(ip, ip.is_v4 ? spec.prefix_v4 : spec.prefix_v6);
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::memcpy(&a, p.network.bytes.data(), 8);
    std::memcpy(&b, p.network.bytes.data() + 8, 8);
    const std::uint64_t h = rules::mix64(a ^ rules::mix64(b ^ (p.network.is_v4 ? 4 : 6)));
    return *shards[h % shards.size()];
  }
};

struct RuleSnapshot {
  std::vector<std::shared_ptr<RuleUnit>> units;
  std::shared_ptr<const normalize::CustomPatternSet> patterns;
  std::vector<IpPrefix> never_ban;
  std::vector<IpPrefix> trusted_proxies;
};

// The current snapshot; workers poll `generation` (one relaxed load per message) and take the
// lock only when it changed.
class SnapshotHolder {
 public:
  void publish(std::shared_ptr<const RuleSnapshot> s) {
    std::lock_guard lock(mu_);
    current_ = std::move(s);
    generation_.fetch_add(1, std::memory_order_release);
  }
  std::shared_ptr<const RuleSnapshot> get(std::uint64_t& generation) const {
    std::lock_guard lock(mu_);
    generation = generation_.load(std::memory_order_acquire);
    return current_;
  }
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const RuleSnapshot> current_;
  std::atomic<std::uint64_t> generation_{0};
};

// ---------------------------------------------------------------------------------------------
// Actions: one bounded queue, one thread, batched commits

struct ActionRequest {
  enum class Kind : std::uint8_t { ban, unban };
  Kind kind = Kind::ban;
  bool manual = false;
  IpPrefix target;
  normalize::InlineString<rules::kMaxRuleNameLength + 1> rule;
  std::int64_t duration_seconds = 0;
  std::uint32_t offence = 1;
  UnixMicros received = 0;  // arrival of the message that crossed the threshold
  std::shared_ptr<std::promise<std::string>> reply;  // manual requests: the control reply
};

class ActionQueue {
 public:
  explicit ActionQueue(std::size_t capacity) : capacity_(capacity) { items_.reserve(capacity); }
  // Never blocks; false when full or closed.
  bool push(ActionRequest&& r) {
    {
      std::lock_guard lock(mu_);
      if (closed_ || items_.size() >= capacity_) return false;
      items_.push_back(std::move(r));
    }
    cv_.notify_one();
    return true;
  }
  // Waits for requests and takes all of them. False once closed and empty.
  bool take_all(std::vector<ActionRequest>& out) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return closed_ || !items_.empty(); });
    if (items_.empty()) return false;
    out.swap(items_);  // both keep their capacity: no allocation in steady state
    return true;
  }
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  std::size_t depth() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ActionRequest> items_;
  std::size_t capacity_;
  bool closed_ = false;
};

class ActionsWorker {
 public:
  ActionsWorker(actions::FirewallBackend& backend, state::BanStore& store, BanBook& book,
                ActionQueue& queue, PipelineMetrics& metrics)
      : backend_(backend), store_(store), book_(book), queue_(queue), metrics_(metrics) {}

  void run() {
    std::vector<ActionRequest> batch;
    batch.reserve(queue_.capacity());
    while (queue_.take_all(batch)) {
      process(batch);
      batch.clear();
    }
  }

 private:
  void reply(ActionRequest& r, std::string text) {
    if (r.reply) r.reply->set_value(std::move(text));
  }

  void process(std::vector<ActionRequest>& batch) {
    const UnixMicros now = wall_now();
    changes_.clear();
    origins_.clear();
    records_.clear();
    unban_targets_.clear();
    superseded_.clear();
    // Within one batch a target is changed once: several rules may decide on the same address
    // at the same moment, and a later request for it overrides an earlier one.
    std::unordered_map<std::string, std::size_t> by_target;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      ActionRequest& r = batch[i];
      const std::string key = r.target.to_string();
      if (r.kind == ActionRequest::Kind::ban) {
        const UnixMicros expires = now + r.duration_seconds * kMicrosPerSecond;
        if (const auto existing = book_.covering(r.target, now); existing && existing->expires >= expires) {
          metrics_.redundant->inc();
          reply(r, "ok\n" + key + " is already banned until " +
                       format_rfc3339(existing->expires - existing->expires % kMicrosPerSecond) +
                       " (rule " + existing->rule + ")\n");
          continue;
        }
      }
      if (const auto it = by_target.find(key); it != by_target.end()) {
        const std::size_t prev = origins_[it->second];
        if (prev == kImplicitRemoval) {
          origins_[it->second] = i;
          changes_[it->second] = to_change(r);
          continue;
        }
        const bool both_bans = batch[prev].kind == ActionRequest::Kind::ban && r.kind == ActionRequest::Kind::ban;
        if (both_bans && batch[prev].duration_seconds >= r.duration_seconds) {
          metrics_.redundant->inc();
          reply(r, "ok\n" + key + " is banned in the same batch for longer\n");
          continue;
        }
        // The earlier request is superseded.
        reply(batch[prev], "ok\n" + key + ": superseded by a later request\n");
        origins_[it->second] = i;
        changes_[it->second] = to_change(r);
        continue;
      }
      if (r.kind == ActionRequest::Kind::ban) {
        // nftables interval sets refuse overlapping elements: a wider ban replaces the narrower
        // ones it covers, deleted in the same commit before it is added.
        for (const ActiveBan& narrower : book_.inside(r.target, now)) {
          const std::string nkey = narrower.target.to_string();
          if (by_target.count(nkey) != 0) continue;
          by_target.emplace(nkey, changes_.size());
          changes_.push_back(actions::BanChange::remove(narrower.target));
          origins_.push_back(kImplicitRemoval);
        }
      }
      by_target.emplace(key, changes_.size());
      changes_.push_back(to_change(r));
      origins_.push_back(i);
    }
    if (changes_.empty()) return;

    // The store is the record of intent: bans are written before the kernel sees them, so a
    // crash in between is repaired by reconciliation at the next start.
    for (std::size_t c = 0; c < changes_.size(); ++c) {
      if (origins_[c] == kImplicitRemoval) continue;
      const ActionRequest& r = batch[origins_[c]];
      if (r.kind == ActionRequest::Kind::ban) {
        records_.push_back(state::BanRecord{r.target, std::string(r.rule.view()),
                                            r.manual ? state::BanSource::kManual : state::BanSource::kAuto,
                                            now, now + r.duration_seconds * kMicrosPerSecond});
      }
    }
    if (!records_.empty() && !store_.record_bans(records_)) {
      metrics_.store_errors->inc();
      store_log_.log(LogLevel::warning, now, "cannot record bans in the state database: %s",
                     store_.last_error().c_str());
    }

    const actions::BatchResult result = backend_.apply(changes_, now);
    const UnixMicros committed = wall_now();
    metrics_.firewall_batches->inc();
    std::vector<bool> failed(changes_.size(), false);
    for (const auto& f : result.failures) {
      if (f.index < failed.size()) failed[f.index] = true;
    }
    if (!result.error.empty() && result.applied == 0) std::fill(failed.begin(), failed.end(), true);

    std::size_t banned = 0;
    std::vector<IpPrefix> failed_bans;
    for (std::size_t c = 0; c < changes_.size(); ++c) {
      if (origins_[c] == kImplicitRemoval) {
        if (failed[c]) {
          metrics_.firewall_errors->inc();
        } else {
          book_.erase(changes_[c].target);
          superseded_.push_back(changes_[c].target);
        }
        continue;
      }
      ActionRequest& r = batch[origins_[c]];
      const std::string target = r.target.to_string();
      if (failed[c]) {
        metrics_.firewall_errors->inc();
        int err = 0;
        for (const auto& f : result.failures) {
          if (f.index == c) err = f.error;
        }
        const std::string why = !result.error.empty() ? result.error
                                : err != 0            ? std::string(std::strerror(err))
                                                      : std::string("refused");
        firewall_log_.log(LogLevel::warning, committed, "firewall change for %s failed: %s",
                          target.c_str(), why.c_str());
        if (r.kind == ActionRequest::Kind::ban) failed_bans.push_back(r.target);
        reply(r, "error the firewall refused the change for " + target + ": " + why + "\n");
        continue;
      }
      if (r.kind == ActionRequest::Kind::ban) {
        ActiveBan b{r.target, std::string(r.rule.view()), now,
                    now + r.duration_seconds * kMicrosPerSecond, r.offence};
        book_.put(b);
        metrics_.bans_for_rule(b.rule).inc();
        if (!r.manual) {
          metrics_.ban_latency->observe(static_cast<double>(committed - r.received) / 1e6);
        }
        ++banned;
        if (banned <= kBanLinesPerBatch) {
          LOG_INFO("banned %s for %s (rule %s, offence %u)", target.c_str(),
                   format_duration(r.duration_seconds).c_str(), b.rule.c_str(), b.offence);
        }
        reply(r, "ok\nbanned " + target + " until " +
                     format_rfc3339(b.expires - b.expires % kMicrosPerSecond) + "\n");
      } else {
        const bool was_banned = book_.find(r.target, now).has_value();
        book_.erase(r.target);
        unban_targets_.push_back(r.target);
        metrics_.unbans->inc();
        LOG_INFO("unbanned %s", target.c_str());
        reply(r, was_banned ? "ok\nunbanned " + target + "\n"
                            : "ok\n" + target + " was not banned (removed from the firewall anyway)\n");
      }
    }
    if (banned > kBanLinesPerBatch) {
      LOG_INFO("... and %zu more bans in the same batch", banned - kBanLinesPerBatch);
    }
    // Failed bans must not be restored at the next start as if they had been in force.
    if (!failed_bans.empty() && !store_.record_unbans(failed_bans, state::BanSource::kAuto, committed)) {
      metrics_.store_errors->inc();
    }
    if (!superseded_.empty() && !store_.record_unbans(superseded_, state::BanSource::kAuto, committed)) {
      metrics_.store_errors->inc();
    }
    if (!unban_targets_.empty() &&
        !store_.record_unbans(unban_targets_, state::BanSource::kManual, committed)) {
      metrics_.store_errors->inc();
      store_log_.log(LogLevel::warning, committed, "cannot record unbans in the state database: %s",
                     store_.last_error().c_str());
    }
  }

  static actions::BanChange to_change(const ActionRequest& r) {
    if (r.kind == ActionRequest::Kind::unban) return actions::BanChange::remove(r.target);
    const std::int64_t d = std::clamp<std::int64_t>(r.duration_seconds, 1, 0xffffffffLL);
    return actions::BanChange::add(r.target, static_cast<std::uint32_t>(d));
  }

  static constexpr std::size_t kBanLinesPerBatch = 20;
  static constexpr std::size_t kImplicitRemoval = static_cast<std::size_t>(-1);

  actions::FirewallBackend& backend_;
  state::BanStore& store_;
  BanBook& book_;
  ActionQueue& queue_;
  PipelineMetrics& metrics_;
  std::vector<actions::BanChange> changes_;
  std::vector<std::size_t> origins_;
  std::vector<state::BanRecord> records_;
  std::vector<IpPrefix> unban_targets_;
  std::vector<IpPrefix> superseded_;  // narrower bans replaced by a wider one
  RateLimitedLog firewall_log_;
  RateLimitedLog store_log_;
};

// ---------------------------------------------------------------------------------------------
// The per-worker pipeline: parse -> normalize -> rules -> actions queue

class PipelineWorker final : public ingest::MessageSink {
 public:
  PipelineWorker(const SnapshotHolder& holder, PipelineMetrics& metrics, ActionQueue& queue)
      : holder_(holder), metrics_(metrics), queue_(queue),
        normalizer_(std::make_unique<normalize::Normalizer>()) {
    // The snapshot is taken at the first message (generation 0 is never published), so the
    // worker can exist before the rules are built.
    decisions_.reserve(16);
  }

  void on_message(std::string_view payload, ingest::Transport transport,
                  UnixMicros arrival) noexcept override {
    metrics_.received[static_cast<std::size_t>(transport)]->inc();
    ingest::SyslogMessage msg;
    const ingest::SyslogParseError err = ingest::parse_syslog(payload, arrival, msg);
    if (err != ingest::SyslogParseError::ok) {
      metrics_.dropped_parse->inc();
      const auto e = static_cast<std::size_t>(err);
      if (e < kParseErrorCount && metrics_.parse_errors[e] != nullptr) metrics_.parse_errors[e]->inc();
      return;
    }
    if (holder_.generation() != generation_) refresh();
    normalize::AuthEvent event;
    const normalize::NormalizeResult r = normalizer_->normalize(msg, event);
    const auto source = static_cast<std::size_t>(r.source) % kSourceCount;
    if (r.outcome == normalize::NormalizeOutcome::unrecognized) {
      metrics_.unrecognized[source]->inc();
      return;
    }
    if (r.outcome != normalize::NormalizeOutcome::event) return;
    metrics_.events[source][static_cast<std::size_t>(event.kind) % kKindCount]->inc();
    decisions_.clear();
    for (const auto& unit : snapshot_->units) {
      if (!unit->wants(event)) continue;
      LockedEngine& le = unit->engine_for(event.ip);
      std::lock_guard lock(le.mu);
      le.engine->on_event(event, arrival, decisions_);
    }
    for (const rules::BanDecision& d : decisions_) {
      ActionRequest a;
      a.kind = ActionRequest::Kind::ban;
      a.target = d.target;
      a.rule = d.rule;
      a.duration_seconds = d.duration_seconds;
      a.offence = d.offence;
      a.received = arrival;
      if (!queue_.push(std::move(a))) {
        metrics_.decisions_dropped->inc();
        queue_full_log_.log(LogLevel::warning, arrival,
                            "actions queue full: ban decision for rule %.*s dropped",
                            static_cast<int>(d.rule.view().size()), d.rule.view().data());
      }
    }
  }

 private:
  void refresh() {
    snapshot_ = holder_.get(generation_);
    normalizer_->set_patterns(snapshot_->patterns);
  }

  const SnapshotHolder& holder_;
  PipelineMetrics& metrics_;
  ActionQueue& queue_;
  std::uint64_t generation_ = 0;
  std::shared_ptr<const RuleSnapshot> snapshot_;
  std::unique_ptr<normalize::Normalizer> normalizer_;
  std::vector<rules::BanDecision> decisions_;
  RateLimitedLog queue_full_log_;
};

// ---------------------------------------------------------------------------------------------
// The daemon

constexpr std::size_t kActionQueueCapacity = 65536;
constexpr std::size_t kMaxTrackedKeys = 1'000'000;  // over all engines of one rule

struct IoWorker {
  asio::io_context io{1};
  std::unique_ptr<PipelineWorker> pipeline;
  std::unique_ptr<ingest::TcpWorker> tcp;
  std::thread thread;
};

class Daemon {
 public:
  explicit Daemon(ServeOptions options) : options_(std::move(options)), metrics_(registry_) {
    if (options_.io_threads == 0) options_.io_threads = 2;
    if (options_.shards == 0) options_.shards = 4;
  }

  int run();

 private:
  bool build_snapshot(const LoadedConfig& loaded, const RuleSnapshot* previous,
                      std::shared_ptr<RuleSnapshot>& out);
  // 0 when every listener is open, else the exit code (2: a bad address, 1: cannot bind).
  int open_listeners();
  void register_metrics();
  void on_signal(int signo);
  void reload();
  void stop();
  void housekeeping();
  void register_rule_metrics(const RuleSnapshot& snap);
  std::string control(std::string_view request);
  HttpResponse http(std::string_view method, std::string_view path);
  std::string submit_and_wait(ActionRequest&& r);

  ServeOptions options_;
  LoadedConfig loaded_;
  MetricsRegistry registry_;
  PipelineMetrics metrics_;
  asio::io_context control_io_{1};
  std::unique_ptr<asio::signal_set> signals_;
  std::unique_ptr<asio::steady_timer> housekeeping_timer_;

  std::unique_ptr<actions::FirewallBackend> backend_;
  std::string backend_name_;
  std::unique_ptr<state::BanStore> ban_store_;
  std::unique_ptr<state::SqliteOffenceStore> offences_;
  BanBook book_;
  ActionQueue queue_{kActionQueueCapacity};
  std::unique_ptr<ActionsWorker> actions_;
  std::thread actions_thread_;

  SnapshotHolder snapshots_;
  std::shared_ptr<RuleSnapshot> snapshot_;  // the one published last (control thread only)
  std::vector<std::unique_ptr<IoWorker>> workers_;
  std::vector<std::unique_ptr<ingest::UdpListenerStats>> udp_stats_;
  std::vector<std::unique_ptr<ingest::UdpListener>> udp_;
  std::vector<std::size_t> udp_owner_;  // worker index per UDP listener
  std::vector<std::unique_ptr<ingest::TcpListenerStats>> tcp_stats_;
  std::vector<std::unique_ptr<ingest::TcpListener>> tcp_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<ControlSocketServer> control_;
  bool stopping_ = false;
  std::uint64_t housekeeping_ticks_ = 0;
  struct {
    std::uint64_t received = 0, events = 0, parse_errors = 0, bans = 0;
  } summary_;
  static constexpr std::int64_t kBanHistoryDays = 90;
  RateLimitedLog proxy_log_{60 * kMicrosPerSecond};
};

bool Daemon::build_snapshot(const LoadedConfig& loaded, const RuleSnapshot* previous,
                            std::shared_ptr<RuleSnapshot>& out) {
  out = std::make_shared<RuleSnapshot>();
  out->patterns = loaded.patterns;
  out->never_ban = loaded.config.never_ban;
  out->trusted_proxies = loaded.config.trusted_proxies;
  // never_ban and trusted_proxies are compiled into every engine: when they change, no engine
  // can be kept.
  const bool lists_same = previous != nullptr && previous->never_ban == out->never_ban &&
                          previous->trusted_proxies == out->trusted_proxies;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < loaded.rules.rules.size(); ++i) {
    const rules::RuleSpec& spec = loaded.rules.rules[i];
    std::shared_ptr<RuleUnit> unit;
    if (lists_same) {
      for (const auto& old : previous->units) {
        if (same_definition(old->spec, spec)) {
          unit = old;
          break;
        }
      }
    }
    if (unit) {
      ++kept;
    } else {
      unit = std::make_shared<RuleUnit>();
      unit->spec = spec;
      // A rule keyed by user alone counts one user over many addresses: one engine.
      const std::size_t shards = spec.key == rules::KeyKind::user ? 1 : options_.shards;
      rules::RuleSet one;
      one.rules.push_back(spec);
      for (std::size_t s = 0; s < shards; ++s) {
        rules::RuleEngineOptions eo;
        eo.max_tracked_keys = std::max<std::size_t>(1024, kMaxTrackedKeys / shards);
        eo.history = offences_.get();
        eo.dedup.session_capacity = std::max<std::uint32_t>(1024, (1u << 16) / static_cast<std::uint32_t>(shards));
        eo.dedup.tie_capacity = std::max<std::uint32_t>(1024, (1u << 14) / static_cast<std::uint32_t>(shards));
        // Every rule's engine sees failures attributed to a trusted proxy; one warning suffices.
        if (i == 0) {
          eo.warn = [this](std::string_view text) {
            proxy_log_.log(LogLevel::warning, wall_now(), "%.*s", static_cast<int>(text.size()), text.data());
          };
        }
        auto le = std::make_unique<LockedEngine>();
        le->engine = std::make_unique<rules::RuleEngine>(one, out->never_ban, out->trusted_proxies, eo);
        unit->shards.push_back(std::move(le));
      }
    }
    out->units.push_back(std::move(unit));
  }
  if (previous != nullptr) {
    LOG_INFO("rules: %zu loaded, %zu kept their window state, %zu started empty",
             out->units.size(), kept, out->units.size() - kept);
  }
  return true;
}

int Daemon::open_listeners() {
  const ingest::SenderFilter filter(loaded_.config.listen.allowed_senders);
  std::size_t next = 0;
  for (const auto& text : loaded_.config.listen.udp) {
    asio::ip::address addr;
    unsigned short port = 0;
    if (!parse_host_port(text, addr, port)) {
      std::fprintf(stderr, "authwall: %s: listen.udp entry '%s' is not HOST:PORT\n",
                   loaded_.config.path.c_str(), text.c_str());
      return 2;
    }
    ingest::UdpListenerOptions o;
    o.endpoint = {addr, port};
    o.allowed_senders = filter;
    const std::size_t owner = next++ % workers_.size();
    udp_stats_.push_back(std::make_unique<ingest::UdpListenerStats>());
    auto l = std::make_unique<ingest::UdpListener>(workers_[owner]->io, *workers_[owner]->pipeline,
                                                   *udp_stats_.back(), o);
    std::string error;
    if (!l->open(error)) {
      LOG_ERROR("cannot listen on udp %s: %s", text.c_str(), error.c_str());
      return 1;
    }
    udp_.push_back(std::move(l));
    udp_owner_.push_back(owner);
  }
  std::vector<ingest::TcpWorker*> tcp_workers;
  for (auto& w : workers_) tcp_workers.push_back(w->tcp.get());
  for (const auto& text : loaded_.config.listen.tcp) {
    asio::ip::address addr;
    unsigned short port = 0;
    if (!parse_host_port(text, addr, port)) {
      std::fprintf(stderr, "authwall: %s: listen.tcp entry '%s' is not HOST:PORT\n",
                   loaded_.config.path.c_str(), text.c_str());
      return 2;
    }
    ingest::TcpListenerOptions o;
    o.endpoint = {addr, port};
    o.allowed_senders = filter;
    tcp_stats_.push_back(std::make_unique<ingest::TcpListenerStats>());
    auto l = std::make_unique<ingest::TcpListener>(control_io_, tcp_workers, *tcp_stats_.back(), o);
    std::string error;
    if (!l->open(error)) {
      LOG_ERROR("cannot listen on tcp %s: %s", text.c_str(), error.c_str());
      return 1;
    }
    tcp_.push_back(std::move(l));
  }
  return 0;
}

void Daemon::register_metrics() {
  auto& r = registry_;
  auto sum_udp = [this](auto member) {
    return [this, member] {
      double v = 0;
      for (const auto& s : udp_stats_) v += static_cast<double>(((*s).*member).load());
      return v;
    };
  };
  auto sum_tcp = [this](auto member) {
    return [this, member] {
      double v = 0;
      for (const auto& s : tcp_stats_) v += static_cast<double>(((*s).*member).load());
      return v;
    };
  };
  using U = ingest::UdpListenerStats;
  using T = ingest::TcpListenerStats;
  const char* dropped_help = "Messages dropped before normalization, by reason";
  r.counter_fn("authwall_messages_dropped_total", dropped_help, {{"reason", "sender_not_allowed"}},
               sum_udp(&U::dropped_sender));
  r.counter_fn("authwall_messages_dropped_total", dropped_help, {{"reason", "receive_buffer_full"}},
               sum_udp(&U::kernel_drops));
  r.counter_fn("authwall_messages_dropped_total", dropped_help, {{"reason", "oversize"}}, [this] {
    double v = 0;
    for (const auto& s : udp_stats_) v += static_cast<double>(s->dropped_truncated.load());
    for (const auto& s : tcp_stats_) v += static_cast<double>(s->oversize_drops.load());
    return v;
  });
  r.counter_fn("authwall_messages_dropped_total", dropped_help, {{"reason", "truncated_frame"}},
               sum_tcp(&T::truncated));
  r.counter_fn("authwall_messages_dropped_total", dropped_help, {{"reason", "empty_datagram"}},
               sum_udp(&U::dropped_empty));
  const char* bytes_help = "Bytes received on syslog sockets";
  r.counter_fn("authwall_bytes_received_total", bytes_help, {{"transport", "udp"}}, sum_udp(&U::bytes));
  r.counter_fn("authwall_bytes_received_total", bytes_help, {{"transport", "tcp"}}, sum_tcp(&T::bytes));
  r.gauge_fn("authwall_udp_receive_buffer_bytes", "Receive buffer the kernel granted per UDP socket (smallest)",
             {}, [this] {
               double v = 0;
               for (const auto& s : udp_stats_) {
                 const double b = static_cast<double>(s->receive_buffer_bytes.load());
                 v = v == 0 ? b : std::min(v, b);
               }
               return v;
             });
  r.gauge_fn("authwall_tcp_connections", "Open syslog TCP connections", {}, sum_tcp(&T::active));
  r.counter_fn("authwall_tcp_connections_accepted_total", "Syslog TCP connections accepted", {},
               sum_tcp(&T::accepted));
  const char* rejected_help = "Syslog TCP connections closed at accept, by reason";
  r.counter_fn("authwall_tcp_connections_rejected_total", rejected_help, {{"reason", "sender_not_allowed"}},
               sum_tcp(&T::rejected_sender));
  r.counter_fn("authwall_tcp_connections_rejected_total", rejected_help, {{"reason", "max_connections"}},
               sum_tcp(&T::rejected_limit));
  const char* closed_help = "Syslog TCP connections closed by authwall, by reason";
  r.counter_fn("authwall_tcp_connections_closed_total", closed_help, {{"reason", "idle"}},
               sum_tcp(&T::closed_idle));
  r.counter_fn("authwall_tcp_connections_closed_total", closed_help, {{"reason", "count_too_large"}},
               sum_tcp(&T::closed_count_too_large));
  r.counter_fn("authwall_tcp_connections_closed_total", closed_help, {{"reason", "bad_count"}},
               sum_tcp(&T::closed_bad_count));
  r.counter_fn("authwall_tcp_ignored_bytes_total",
               "Bytes ignored after a connection's framing failed (before its close)", {},
               sum_tcp(&T::ignored_bytes));
  r.gauge_fn("authwall_bans_active", "Bans currently in force", {},
             [this] { return static_cast<double>(book_.count(wall_now())); });
  r.gauge_fn("authwall_action_queue_depth", "Ban decisions waiting for the actions thread", {},
             [this] { return static_cast<double>(queue_.depth()); });
  r.gauge_fn("authwall_action_queue_capacity", "Capacity of the actions queue", {},
             [this] { return static_cast<double>(queue_.capacity()); });
  // Engine statistics are read under each shard's lock at scrape time.
  auto engine_sum = [this](auto field) {
    return [this, field] {
      std::uint64_t generation = 0;
      const auto snap = snapshots_.get(generation);
      double v = 0;
      for (const auto& unit : snap->units) {
        for (const auto& le : unit->shards) {
          std::lock_guard lock(le->mu);
          v += static_cast<double>(le->engine->stats().*field);
        }
      }
      return v;
    };
  };
  r.gauge_fn("authwall_tracked_keys", "Keys (addresses, prefixes, users) with live rule state", {},
             engine_sum(&rules::RuleEngineStats::tracked_keys));
  r.gauge_fn("authwall_rule_state_bytes", "Memory held by rule window tables", {},
             engine_sum(&rules::RuleEngineStats::state_bytes));
  r.counter_fn("authwall_rule_evictions_total",
               "Keys evicted while their window was live (table full); since the last reload", {},
               engine_sum(&rules::RuleEngineStats::evictions));
  r.gauge_fn("authwall_rules", "Rules loaded", {}, [this] {
    std::uint64_t generation = 0;
    return static_cast<double>(snapshots_.get(generation)->units.size());
  });
}

// Per rule: bans (created at zero so a rule that never fired still shows) and evaluations (events
// that reached the rule's engines; a rule whose definition changed at a reload starts again
// from zero, which Prometheus treats as a counter reset).
void Daemon::register_rule_metrics(const RuleSnapshot& snap) {
  for (const auto& unit : snap.units) {
    const std::string name = unit->spec.name;
    metrics_.bans_for_rule(name);
    registry_.counter_fn(
        "authwall_rule_evaluations_total", "Events evaluated by each rule", {{"rule", name}},
        [this, name] {
          std::uint64_t generation = 0;
          const auto current = snapshots_.get(generation);
          double v = 0;
          for (const auto& u : current->units) {
            if (u->spec.name != name) continue;
            for (const auto& le : u->shards) {
              std::lock_guard lock(le->mu);
              v += static_cast<double>(le->engine->stats().events);
            }
          }
          return v;
        });
  }
}

void Daemon::on_signal(int signo) {
  if (signo == SIGHUP) {
    reload();
  } else {
    stop();
    return;
  }
  signals_->async_wait([this](boost::system::error_code ec, int s) {
    if (!ec) on_signal(s);
  });
}

void Daemon::reload() {
  LOG_INFO("SIGHUP: reloading %s", options_.config_path.c_str());
  LoadedConfig next;
  std::vector<ConfigError> errors;
  if (!load_full_config(options_.config_path, next, errors)) {
    for (const auto& e : errors) LOG_ERROR("%s", e.to_string().c_str());
    LOG_ERROR("reload rejected (%zu error%s); the previous configuration keeps running",
              errors.size(), errors.size() == 1 ? "" : "s");
    metrics_.reloads_failed->inc();
    return;
  }
  // Sockets, the state database and the firewall layout are opened once; say so rather than
  // pretend they changed.
  const Config& a = loaded_.config;
  const Config& b = next.config;
  auto differs = [](const char* what) {
    LOG_WARNING("reload: %s changed; that takes effect only after a restart", what);
  };
  if (a.listen.udp != b.listen.udp || a.listen.tcp != b.listen.tcp) differs("listen addresses");
  if (a.listen.allowed_senders != b.listen.allowed_senders) differs("listen.allowed_senders");
  if (a.metrics_listen != b.metrics_listen) differs("metrics.listen");
  if (a.control_socket != b.control_socket) differs("control.socket");
  if (a.state_path != b.state_path) differs("state.path");
  if (a.firewall.backend != b.firewall.backend || a.firewall.table != b.firewall.table ||
      a.firewall.ports != b.firewall.ports || a.firewall.all_ports != b.firewall.all_ports ||
      a.firewall.hooks != b.firewall.hooks) {
    differs("firewall");
  }
  std::shared_ptr<RuleSnapshot> snap;
  build_snapshot(next, snapshot_.get(), snap);
  snapshot_ = snap;
  snapshots_.publish(snap);
  register_rule_metrics(*snap);
  loaded_ = std::move(next);
  metrics_.reloads_ok->inc();
  LOG_INFO("reload complete: %zu rules, %zu custom patterns", snap->units.size(),
           snap->patterns ? snap->patterns->size() : 0);
}

void Daemon::housekeeping() {
  const UnixMicros now = wall_now();
  book_.prune(now);
  // Hourly: keep the state database from growing without bound. Ban history is kept for a
  // while for audits; offence history only as far back as escalation looks.
  // Every 10 minutes, one summary line (the data path itself never logs per message).
  if (housekeeping_ticks_ % 600 == 599) {
    std::uint64_t received = 0;
    for (const Counter* c : metrics_.received) received += c->value();
    std::uint64_t events = 0;
    for (const auto& per_source : metrics_.events) {
      for (const Counter* c : per_source) events += c->value();
    }
    const std::uint64_t parse_errors = metrics_.dropped_parse->value();
    const std::uint64_t bans = metrics_.ban_latency->count();
    if (received != summary_.received) {
      LOG_INFO("last 10 min: %llu messages, %llu events, %llu unparseable, %llu automatic bans; %zu bans active",
               static_cast<unsigned long long>(received - summary_.received),
               static_cast<unsigned long long>(events - summary_.events),
               static_cast<unsigned long long>(parse_errors - summary_.parse_errors),
               static_cast<unsigned long long>(bans - summary_.bans), book_.count(now));
    }
    summary_ = {received, events, parse_errors, bans};
  }
  if (++housekeeping_ticks_ % 3600 == 1) {
    ban_store_->purge_expired(now);
    ban_store_->prune_history(now - kBanHistoryDays * 86400 * kMicrosPerSecond);
    offences_->prune(now - rules::RuleEngineOptions{}.history_window_seconds * kMicrosPerSecond);
  }
  for (const auto& unit : snapshot_->units) {
    for (const auto& le : unit->shards) {
      std::lock_guard lock(le->mu);
      le->engine->sweep(now, 512);
    }
  }
  housekeeping_timer_->expires_after(std::chrono::seconds(1));
  housekeeping_timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopping_) housekeeping();
  });
}

std::string Daemon::submit_and_wait(ActionRequest&& r) {
  auto promise = std::make_shared<std::promise<std::string>>();
  auto future = promise->get_future();
  r.reply = promise;
  if (!queue_.push(std::move(r))) return "error the actions queue is full; try again\n";
  // The control thread waits for the commit so `authwall ban` returns once the ban is in force
  // (and a following `authwall bans` lists it). Manual commands are rare; HTTP scrapes wait.
  if (future.wait_for(std::chrono::seconds(15)) != std::future_status::ready) {
    return "error the firewall did not confirm the change within 15 s\n";
  }
  return future.get();
}

std::string Daemon::control(std::string_view request) {
  const UnixMicros now = wall_now();
  auto word = [&request]() {
    while (!request.empty() && request.front() == ' ') request.remove_prefix(1);
    const auto sp = request.find(' ');
    std::string_view w = request.substr(0, sp);
    request = sp == std::string_view::npos ? std::string_view() : request.substr(sp + 1);
    return w;
  };
  const std::string_view cmd = word();
  if (cmd == "bans") {
    const std::string_view form = word();
    const auto bans = book_.list(now);
    return "ok\n" + (form == "json" ? format_bans_json(bans, now) : format_bans_table(bans, now));
  }
  if (cmd == "ban" || cmd == "unban") {
    const std::string target_text(word());
    IpPrefix target;
    if (!IpPrefix::parse(target_text, target)) {
      return "error usage: '" + target_text + "' is not ADDR or ADDR/PREFIX with the host bits zero\n";
    }
    ActionRequest r;
    r.manual = true;
    r.target = target;
    r.received = now;
    r.rule.assign("manual");
    if (cmd == "ban") {
      const std::string seconds_text(word());
      char* end = nullptr;
      const long long seconds = std::strtoll(seconds_text.c_str(), &end, 10);
      if (seconds_text.empty() || *end != '\0' || seconds <= 0 || seconds > rules::kMaxBanSeconds) {
        return "error usage: the ban duration must be between 1 second and 365 days\n";
      }
      for (const auto& p : snapshot_->never_ban) {
        if (p.contains(target.network) || target.contains(p.network)) {
          return "error usage: " + target.to_string() + " overlaps never_ban entry " + p.to_string() + "\n";
        }
      }
      r.kind = ActionRequest::Kind::ban;
      r.duration_seconds = seconds;
    } else {
      r.kind = ActionRequest::Kind::unban;
    }
    return submit_and_wait(std::move(r));
  }
  return "error usage: unknown request (expected: bans json|text, ban TARGET SECONDS, unban TARGET)\n";
}

HttpResponse Daemon::http(std::string_view method, std::string_view path) {
  if (method != "GET" && method != "HEAD") {
    return {405, "text/plain; charset=utf-8", "only GET is supported\n"};
  }
  if (path == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", registry_.render()};
  }
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (path == "/api/v1/bans") {
    const UnixMicros now = wall_now();
    return {200, "application/json", format_bans_json(book_.list(now), now)};
  }
  return {404, "text/plain; charset=utf-8", "not found (try /metrics, /healthz, /api/v1/bans)\n"};
}

void Daemon::stop() {
  if (stopping_) return;
  stopping_ = true;
  LOG_INFO("stopping: no new connections; draining what was received");
  if (http_) http_->stop();
  if (control_) control_->stop();
  if (housekeeping_timer_) housekeeping_timer_->cancel();
  for (auto& l : tcp_) l->stop();
  for (std::size_t i = 0; i < udp_.size(); ++i) {
    ingest::UdpListener* l = udp_[i].get();
    asio::post(workers_[udp_owner_[i]]->io, [l] { l->drain_and_close(); });
  }
  // Queued after every drain above: each worker's last handler ends its loop.
  for (auto& w : workers_) {
    asio::io_context* io = &w->io;
    asio::post(*io, [io] { io->stop(); });
  }
  // Let the acceptor-close handlers posted by the TCP listeners run, then return from run().
  asio::post(control_io_, [this] { control_io_.stop(); });
}

int Daemon::run() {
  std::vector<ConfigError> errors;
  if (!load_full_config(options_.config_path, loaded_, errors)) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "authwall: %zu error%s in the configuration; not starting\n", errors.size(),
                 errors.size() == 1 ? "" : "s");
    return 2;
  }
  const Config& config = loaded_.config;
  if (config.state_path.empty()) {
    std::fprintf(stderr, "authwall: %s: state.path is required for serve\n", config.path.c_str());
    return 2;
  }

  std::string error;
  // Sockets first: a second daemon on the same configuration fails here, before it touches the
  // state database or the firewall the running one owns.
  for (std::size_t i = 0; i < options_.io_threads; ++i) {
    auto w = std::make_unique<IoWorker>();
    w->pipeline = std::make_unique<PipelineWorker>(snapshots_, metrics_, queue_);
    w->tcp = std::make_unique<ingest::TcpWorker>(w->io, *w->pipeline);
    workers_.push_back(std::move(w));
  }
  if (const int rc = open_listeners(); rc != 0) return rc;

  if (!config.metrics_listen.empty()) {
    asio::ip::address addr;
    unsigned short port = 0;
    if (!parse_host_port(config.metrics_listen, addr, port)) {
      std::fprintf(stderr, "authwall: %s: metrics.listen '%s' is not HOST:PORT\n", config.path.c_str(),
                   config.metrics_listen.c_str());
      return 2;
    }
    http_ = std::make_unique<HttpServer>(
        control_io_, [this](std::string_view m, std::string_view p) { return http(m, p); });
    if (!http_->listen({addr, port}, error)) {
      LOG_ERROR("cannot listen on metrics.listen %s: %s", config.metrics_listen.c_str(), error.c_str());
      return 1;
    }
  }
  if (!config.control_socket.empty()) {
    control_ = std::make_unique<ControlSocketServer>(
        control_io_, [this](std::string_view request) { return control(request); });
    if (!control_->listen(config.control_socket, 0600, error)) {
      LOG_ERROR("%s", error.c_str());
      return 1;
    }
  }

  // Then the state: the offence history feeds escalation, the ban store reconciliation.
  std::error_code fs_error;
  const auto state_dir = std::filesystem::path(config.state_path).parent_path();
  if (!state_dir.empty()) std::filesystem::create_directories(state_dir, fs_error);
  ban_store_ = state::BanStore::open(config.state_path, error);
  if (!ban_store_) {
    LOG_ERROR("%s", error.c_str());
    return 1;
  }
  offences_ = state::SqliteOffenceStore::open(config.state_path, error);
  if (!offences_) {
    LOG_ERROR("%s", error.c_str());
    return 1;
  }

  if (options_.dry_run || config.firewall.backend == "dry-run") {
    backend_ = std::make_unique<actions::DryRunBanBackend>();
    backend_name_ = "dry-run";
  } else {
    actions::NftLayout layout;
    layout.table = config.firewall.table;
    layout.all_ports = config.firewall.all_ports;
    layout.ports = config.firewall.ports;
    layout.hooks = config.firewall.hooks;
    backend_ = std::make_unique<actions::NftBanBackend>(layout);
    backend_name_ = "nftables (table inet " + config.firewall.table + ")";
  }
  const actions::PrepareResult prepared = backend_->prepare();
  if (!prepared.ok) {
    LOG_ERROR("firewall backend %s: %s", backend_name_.c_str(), prepared.error.c_str());
    if (prepared.permission_denied) {
      LOG_ERROR("run as root (CAP_NET_ADMIN), or use --dry-run to leave the firewall alone");
    }
    return 1;
  }
  // Reconciliation runs before the actions thread exists, so it is still the only user of the
  // backend (the one-thread contract of FirewallBackend).
  const UnixMicros start = wall_now();
  const actions::ReconcileResult rec = actions::reconcile(*ban_store_, *backend_, start);
  if (!rec.ok) {
    LOG_WARNING("reconciliation incomplete: %s", rec.error.c_str());
  }
  std::vector<state::BanRecord> active;
  if (ban_store_->active_bans(start, active)) {
    for (const auto& b : active) {
      book_.put(ActiveBan{b.target, b.rule, b.created, b.expires, 1});
    }
  }
  LOG_INFO("firewall: %s; %zu bans restored, %zu expired while stopped, %zu foreign elements removed%s",
           backend_name_.c_str(), rec.restored, rec.expired_dropped, rec.foreign_removed,
           rec.failed > 0 ? " (some changes failed)" : "");


  build_snapshot(loaded_, nullptr, snapshot_);
  snapshots_.publish(snapshot_);
  register_rule_metrics(*snapshot_);
  metrics_.bans_for_rule("manual");
  register_metrics();

  signals_ = std::make_unique<asio::signal_set>(control_io_, SIGTERM, SIGINT, SIGHUP);
  signals_->async_wait([this](boost::system::error_code ec, int s) {
    if (!ec) on_signal(s);
  });
  housekeeping_timer_ = std::make_unique<asio::steady_timer>(control_io_);
  housekeeping();

  actions_ = std::make_unique<ActionsWorker>(*backend_, *ban_store_, book_, queue_, metrics_);
  actions_thread_ = std::thread([this] { actions_->run(); });
  for (auto& l : udp_) l->start();
  for (auto& l : tcp_) l->start();
  for (auto& w : workers_) {
    IoWorker* raw = w.get();
    w->thread = std::thread([raw] {
      auto guard = asio::make_work_guard(raw->io);
      raw->io.run();
    });
  }

  std::string where;
  for (const auto& u : udp_) where += " udp " + u->local_endpoint().address().to_string() + ":" + std::to_string(u->local_endpoint().port());
  for (const auto& t : tcp_) where += " tcp " + t->local_endpoint().address().to_string() + ":" + std::to_string(t->local_endpoint().port());
  LOG_INFO("serving:%s; metrics %s; control %s; %zu rules; %zu I/O threads", where.c_str(),
           config.metrics_listen.empty() ? "off" : config.metrics_listen.c_str(),
           config.control_socket.empty() ? "off" : config.control_socket.c_str(),
           snapshot_->units.size(), workers_.size());

  control_io_.run();

  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  // Every received message has gone through the rules; the actions thread commits and
  // persists whatever they decided, then ends.
  queue_.close();
  if (actions_thread_.joinable()) actions_thread_.join();
  const UnixMicros end = wall_now();
  ban_store_->purge_expired(end);
  LOG_INFO("stopped: %zu bans active", book_.count(end));
  return 0;
}

}  // namespace

int run_daemon(const ServeOptions& options) {
  Daemon daemon(options);
  return daemon.run();
}

}  // namespace authwall::app
