#pragma once
// The daemon's pipeline pieces (app/daemon.h describes the threads): the metrics the data path
// updates, the per-rule sharded rule engines and the snapshot workers read them from, the
// bounded actions queue with its one consumer thread, and the per-worker message sink that
// runs parse -> normalize -> rules inline.
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "actions/firewall_backend.h"
#include "app/ban_book.h"
#include "app/log.h"
#include "app/metrics.h"
#include "common/civil_time.h"
#include "common/ip_address.h"
#include "ingest/message_sink.h"
#include "normalize/auth_event.h"
#include "normalize/custom_patterns.h"
#include "normalize/normalizer.h"
#include "rules/ban_decision.h"
#include "rules/rule_config.h"
#include "rules/rule_engine.h"
#include "state/ban_store.h"
#include "state/offence_store.h"

namespace authwall::app {

// The wall clock, read at the edges only (arrival of a receive batch, an actions commit).
UnixMicros wall_now() noexcept;

inline constexpr std::size_t kParseErrorCount = 8;  // SyslogParseError values, ok included
inline constexpr std::size_t kSourceCount = 3;      // EventSource
inline constexpr std::size_t kKindCount = 5;        // EventKind

// Upper bounds of authwall_ban_latency_seconds: 100 us .. 10 s.
std::vector<double> ban_latency_buckets();

// The series the data path updates, created once (label sets are fixed or come from rule
// names); counters are relaxed atomics, safe from every thread.
struct PipelineMetrics {
  explicit PipelineMetrics(MetricsRegistry& r);
  Counter& bans_for_rule(const std::string& rule) {
    return registry.counter("authwall_bans_total", "Bans committed, by rule", {{"rule", rule}});
  }

  MetricsRegistry& registry;
  std::array<Counter*, 2> received{};  // by ingest::Transport
  Counter* dropped_parse = nullptr;
  std::array<Counter*, kParseErrorCount> parse_errors{};
  std::array<Counter*, kSourceCount> unrecognized{};
  std::array<std::array<Counter*, kKindCount>, kSourceCount> events{};
  Counter* decisions_dropped = nullptr;
  Counter* narrowed = nullptr;
  Histogram* ban_latency = nullptr;
  Counter* firewall_errors = nullptr;
  Counter* firewall_batches = nullptr;
  Counter* unbans = nullptr;
  Counter* redundant = nullptr;
  Counter* reloads_ok = nullptr;
  Counter* reloads_failed = nullptr;
  Counter* store_errors = nullptr;
  Counter* trusted_proxy_failures = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Rule state: per rule, engines sharded by client address

// Whether two rule definitions compile to the same engine (file and position do not count):
// a reload keeps the window state of such a rule. RuleSpec has no operator==; keep this in step
// with rules/rule_config.h.
bool same_definition(const rules::RuleSpec& a, const rules::RuleSpec& b);

// One engine and the lock that makes it single-threaded.
struct LockedEngine {
  std::mutex mu;
  std::unique_ptr<rules::RuleEngine> engine;
};

// One rule: its engines, one per shard (one in all for a rule keyed by user alone).
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
  // The shard for a client: the hash of the address masked to the rule's own prefix, so every
  // address of one key (one /64) meets the same engine.
  LockedEngine& engine_for(const IpAddress& ip) noexcept;
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
  // Waits up to `idle` for requests and takes all of them; `out` stays empty when nothing
  // arrived in time (the caller's chance for housekeeping). False once closed and empty.
  bool take_all(std::vector<ActionRequest>& out, std::chrono::milliseconds idle) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, idle, [this] { return closed_ || !items_.empty(); });
    if (items_.empty()) return !closed_;
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

// The actions thread: drains everything queued, writes the bans to the store (the record of
// intent), commits all firewall changes as one batch, then updates the ban book and metrics and
// answers manual requests. A wider ban replaces the narrower ones it covers in the same commit
// (nftables interval sets refuse overlaps); a decision already covered by a longer ban changes
// nothing. Runs until the queue is closed and empty.
//
// It also writes the rules engines' offence history (`offences`, may be null): they only note
// each offence in memory while deciding, and this thread flushes those notes after each kernel
// commit, when idle and before it ends, so the ban path never waits for the database's lock
// (state/offence_store.h).
class ActionsWorker {
 public:
  ActionsWorker(actions::FirewallBackend& backend, state::BanStore& store, BanBook& book,
                ActionQueue& queue, PipelineMetrics& metrics,
                state::SqliteOffenceStore* offences = nullptr)
      : backend_(backend), store_(store), book_(book), queue_(queue), metrics_(metrics),
        offences_(offences) {}
  void run();
  // One batch (what run() does per wake-up), offence history flushed at the end; public for
  // tests.
  void process(std::vector<ActionRequest>& batch);
  // Held bans (inside a wider ban) whose wider bans all end within kTakeOverLead go into the
  // firewall, the ending wider bans out, in one commit. run() calls it at least once a second;
  // public for tests (which pass a later `now`).
  void release_held(UnixMicros now);
  // How long before a wider ban ends the held bans inside it take over: more than the longest
  // wait between two calls of release_held (a second, or a batch whose state database writes
  // wait out SQLite's 5 s busy timeout twice), so the range is never open in between. The
  // wider ban loses these last seconds for the rest of its range.
  static constexpr UnixMicros kTakeOverLead = 15 * kMicrosPerSecond;

 private:
  // One change sent to the firewall: for a request (batch index), or a narrower ban taken out
  // because the ban of change `owner` covers it.
  struct FirewallStep {
    std::size_t request = 0;  // kNone for a narrower ban taken out
    std::size_t owner = 0;
    ActiveBan narrower;
    std::size_t own_change = kNone;  // the narrower ban's re-ban in the same batch (a change)
  };
  // A write to the ban store. They are applied in order; one that fails stays queued with all
  // after it and is retried at the next wake-up (at least once a second), so a busy or full
  // database delays the record but never reorders or loses it (up to kMaxPendingWrites).
  struct PendingWrite {
    bool ban = true;                       // record_bans(records), else record_unbans(targets)
    std::vector<state::BanRecord> records;
    std::vector<IpPrefix> targets;
    state::BanSource source = state::BanSource::kAuto;
    UnixMicros at = 0;
  };
  static constexpr std::size_t kMaxPendingWrites = 100000;
  void write(PendingWrite w, UnixMicros now);  // queues (bounded)
  bool flush_writes(UnixMicros now);           // false: one failed, it and the rest wait
  static UnixMicros expires_of(const ActionRequest& r, UnixMicros now) {
    return now + r.duration_seconds * kMicrosPerSecond;
  }
  void commit(std::vector<ActionRequest>& batch);
  void flush_offences(UnixMicros now);
  static void reply(ActionRequest& r, std::string text);
  static actions::BanChange to_change(const ActionRequest& r);

  static constexpr std::size_t kBanLinesPerBatch = 20;
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

  actions::FirewallBackend& backend_;
  state::BanStore& store_;
  BanBook& book_;
  ActionQueue& queue_;
  PipelineMetrics& metrics_;
  state::SqliteOffenceStore* offences_;
  std::vector<actions::BanChange> changes_;
  std::vector<std::size_t> origins_;
  std::vector<state::BanRecord> records_;
  std::vector<IpPrefix> unban_targets_;
  std::vector<IpPrefix> superseded_;  // narrower bans replaced by a wider one
  std::vector<actions::BanChange> firewall_;
  std::vector<FirewallStep> steps_;
  std::vector<std::size_t> held_requests_;
  std::vector<std::size_t> book_only_unbans_;
  enum class ReleaseKind : std::uint8_t { wider_ending, narrower_out, going_in };
  std::vector<ReleaseKind> release_kinds_;  // per release_held change
  std::vector<IpPrefix> released_;          // release_held: elements already taken out  // unbans of held bans (no element to delete)
  std::vector<bool> covered_;  // per change: inside a longer ban of the same batch
  std::vector<state::BanRecord> restored_;  // records put back after a failed manual re-ban
  std::deque<PendingWrite> pending_writes_;
  RateLimitedLog firewall_log_;
  RateLimitedLog store_log_;
};

// ---------------------------------------------------------------------------------------------
// The per-worker pipeline: parse -> normalize -> rules -> actions queue

// One per I/O worker thread (it owns a Normalizer). Picks up a new snapshot (SIGHUP) at the
// next message after it is published.
class PipelineWorker final : public ingest::MessageSink {
 public:
  PipelineWorker(const SnapshotHolder& holder, PipelineMetrics& metrics, ActionQueue& queue);
  void on_message(std::string_view payload, ingest::Transport transport,
                  UnixMicros arrival) noexcept override;

 private:
  void refresh();

  const SnapshotHolder& holder_;
  PipelineMetrics& metrics_;
  ActionQueue& queue_;
  std::uint64_t generation_ = 0;
  std::shared_ptr<const RuleSnapshot> snapshot_;
  std::unique_ptr<normalize::Normalizer> normalizer_;
  std::vector<rules::BanDecision> decisions_;
  RateLimitedLog queue_full_log_;
  RateLimitedLog narrowed_log_{60 * kMicrosPerSecond};
};

}  // namespace authwall::app
