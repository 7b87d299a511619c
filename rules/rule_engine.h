#pragma once
// The rules stage: AuthEvents in, BanDecisions out (PRODUCT.md, docs/rules.md).
//
// Built once from a RuleSet (rules/rule_config.h) into immutable rule tables plus per-rule,
// fixed-size window state; a reload builds a new engine. The engine never reads the clock:
// `now` is passed with every event (the daemon passes arrival time, `check -c` the log's own
// timestamps). Not thread-safe: the daemon shards engines by client address, one per thread.
//
// Per event: exactly-once attempt counting (AttemptDeduplicator), then never_ban /
// trusted_proxies, then each matching rule's window for the event's key. Steady state never
// allocates; the only slow path is a ban (offence history lookup + record, and a string for the
// target's text).
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/civil_time.h"
#include "common/ip_address.h"
#include "normalize/auth_event.h"
#include "rules/attempt_deduplicator.h"
#include "rules/ban_decision.h"
#include "rules/key_table.h"
#include "rules/rule_config.h"
#include "state/offence_store.h"

namespace authwall::rules {

struct RuleEngineOptions {
  // Cap on tracked keys over all rules (one key = one rule's state for one ip/user/ip+user).
  std::size_t max_tracked_keys = 1'000'000;
  // Escalation counts earlier bans of the same target within this window.
  std::int64_t history_window_seconds = 30LL * 86400;
  // Offence history (not owned; must outlive the engine). Null: the engine keeps its own, in memory.
  state::OffenceHistory* history = nullptr;
  // Receives the rate-limited trusted-proxy warning (one sentence). May be empty.
  std::function<void(std::string_view)> warn;
  // Minimum time between two warnings about the same trusted_proxies entry.
  std::int64_t proxy_warning_interval_seconds = 60;
  DedupOptions dedup;
  // Table hash seed; 0 = random per engine (keys are attacker-chosen).
  std::uint64_t seed = 0;
  // For differential tests: windows in their plain form — ring windows with full 32-bit times
  // (not 16-bit offsets), `distinct` windows scanned for expired names on every event (no
  // shortcut while the oldest name is in the window). The answers are the same (the fuzzer
  // checks it); only memory and speed differ.
  bool reference_windows = false;
  // Rules with the same key, prefixes and match (brute force and password spray on failures
  // by address, say) keep a key's state in one table entry, so an event looks the key up once
  // for them. Off: a table per rule (for differential tests: the decisions are the same as
  // long as the key cap is not reached; only which idle keys are reclaimed first differs).
  bool share_tables = true;
};

// Keys are counted per rule: an entry of a table two rules share is two tracked keys (and two
// evictions or expirations when it goes).
struct RuleEngineStats {
  std::uint64_t events = 0;
  std::uint64_t duplicate_attempts = 0;      // attempts already counted at an earlier line
  std::uint64_t never_ban_events = 0;        // events from never_ban addresses (skipped)
  std::uint64_t trusted_proxy_failures = 0;  // failures attributed to a trusted proxy
  std::uint64_t decisions = 0;
  std::uint64_t narrowed_decisions = 0;      // prefix bans cut to one address (BanDecision::narrowed)
  std::uint64_t evictions = 0;               // keys dropped while their window was still live
  std::uint64_t expirations = 0;             // idle keys freed (window over, not banned)
  std::uint64_t history_errors = 0;          // offence records that could not be stored
  std::uint64_t tracked_keys = 0;            // current, over all rules
  std::uint64_t state_bytes = 0;             // memory held by window tables (incl. growth slack)
};

class RuleEngine {
 public:
  RuleEngine(const RuleSet& rules, std::vector<IpPrefix> never_ban,
             std::vector<IpPrefix> trusted_proxies, RuleEngineOptions options = {});
  ~RuleEngine();
  RuleEngine(const RuleEngine&) = delete;
  RuleEngine& operator=(const RuleEngine&) = delete;

  // Evaluates one event at time `now`; appends any decisions to `out` (reuse the vector).
  // `e`'s views need only be valid during the call.
  void on_event(const normalize::AuthEvent& e, UnixMicros now, std::vector<BanDecision>& out);
  // The same as on_event for each event in order (identical results), but the table lookups of
  // the next events are started while earlier ones are evaluated, so their memory latency
  // overlaps instead of adding up, and events that share no state (their kinds touch
  // different tables) may be evaluated kind by kind, so the branches that depend on the kind
  // are predicted. What callers with a batch of events should call. `nows[i]` is the time of
  // `events[i]`; extra elements of the longer span are ignored.
  void on_events(std::span<const normalize::AuthEvent> events, std::span<const UnixMicros> nows,
                 std::vector<BanDecision>& out);

  // Frees up to `budget` idle keys per table (windows over and bans expired), so tracked_keys
  // reflects live clients; the daemon calls it periodically. Without it idle keys are reclaimed
  // when a table would otherwise grow and, at the cap, before any live key is evicted.
  void sweep(UnixMicros now, std::size_t budget);

  RuleEngineStats stats() const;
  std::size_t rule_count() const noexcept { return rules_.size(); }
  const std::string& rule_name(std::size_t i) const { return rules_[i].spec.name; }

 private:
  // ring: the last `threshold` attempt times (32-bit); ring16: the same as 16-bit offsets from a
  // per-key base (windows up to kRing16MaxWindow); distinct: (user hash, time) pairs;
  // distinct16: the same with 16-bit time offsets (windows up to kRing16MaxWindow); buckets:
  // 32 counters over the window (thresholds above kMaxExactThreshold).
  enum class WindowKind : std::uint8_t { ring, ring16, distinct, distinct16, buckets };
  // A MatchSpec reduced to what an event must be tested for: the kind is settled before (by
  // the per-kind candidate lists), sources by one bit test, and only the fields the rule names
  // are looked at.
  struct FieldTest {
    MatchField field;
    const FieldCondition* condition;  // in the rule's spec (rules_ is not resized once built)
  };
  struct CompiledMatch {
    std::uint32_t kinds = ~0u;    // bit (1 << EventKind) per kind that may match
    std::uint32_t sources = ~0u;  // bit (1 << EventSource) per source that may match
    std::vector<FieldTest> fields;
    const std::vector<IpPrefix>* ip = nullptr;  // null = any address
    bool matches(const normalize::AuthEvent& e) const noexcept {
      if ((kinds >> static_cast<unsigned>(e.kind) & 1) == 0) return false;
      if ((sources >> static_cast<unsigned>(e.source) & 1) == 0) return false;
      return (fields.empty() && ip == nullptr) || matches_fields(e);
    }
    bool matches_fields(const normalize::AuthEvent& e) const noexcept;
  };
  // `spec` must outlive the result.
  static CompiledMatch compile_match(const MatchSpec& spec);
  struct CompiledRule {
    RuleSpec spec;
    CompiledMatch match;
    CompiledMatch exclude;
    bool has_exclude = false;
    bool needs_user = false;           // key user / ip+user, or distinct users
    std::uint8_t ip_group = 0;         // rules with the same prefixes share an address fingerprint
    WindowKind window = WindowKind::ring;
    std::uint32_t window_s = 0;
    std::uint32_t bucket_width_s = 0;  // buckets: seconds per bucket
    std::uint32_t bucket_span = 0;     // buckets: how many buckets make the window
    std::uint32_t distinct_lanes = 0;  // distinct: threshold rounded up to a multiple of 4
    bool always_scan = false;          // distinct: RuleEngineOptions::reference_windows
    std::uint32_t slot_bytes = 0;      // window state per key after the KeyEntry header
    std::uint64_t mask4[2] = {0, 0};   // address masks for prefix aggregation
    std::uint64_t mask6[2] = {0, 0};
    std::uint16_t table = 0;  // index in tables_
    // Where this rule's ban end (u32 seconds) and window state are in its table's entries: the
    // first member's ban end is KeyEntry::banned_until and its state follows the header; each
    // further member's ban end and state follow the previous member's state.
    std::uint16_t banned_offset = 0;
    std::uint16_t state_offset = 0;
  };

  // A key table and the rules keeping their state in it: one, or up to kMaxMembers with the
  // same key, prefixes and match (RuleEngineOptions::share_tables).
  static constexpr std::size_t kMaxMembers = 4;
  struct RuleTable {
    std::unique_ptr<KeyTable> keys;
    std::uint16_t members[kMaxMembers] = {};  // rule indices, in rule order
    std::uint8_t member_count = 0;
    std::uint32_t window_s = 0;     // the longest member window: an entry is idle after it
    std::uint32_t entry_bytes = 0;  // header and every member's ban end and state
  };

  // One (event, rule) pair that needs the rule's table: the key's fingerprint and what to do.
  // plan() writes an event's steps in table order (the members of a table one after the
  // other); only rules that apply get one.
  struct Step {
    KeyTable* table = nullptr;
    std::uint64_t fp = 0;
    std::uint32_t user32 = 0;  // distinct rules: the user's 32-bit hash
    std::uint32_t where = 0;   // KeyTable::prefetch_entry's answer (on_events), 0 = unknown
    std::uint16_t rule = 0;
    std::uint8_t flags = 0;    // kMatched, kSuccessReset, kSameEntry
  };
  static constexpr std::uint8_t kMatched = 1;
  static constexpr std::uint8_t kSuccessReset = 2;
  // The previous step's table and key (a rule sharing the table): its entry serves this step
  // too, with no lookup of its own.
  static constexpr std::uint8_t kSameEntry = 4;
  static constexpr std::size_t kKinds = 8;  // > every EventKind
  // A rule that may apply to events of one kind, with what planning needs of it in one place.
  struct Candidate {
    KeyTable* table = nullptr;  // the rule's (shared with the rules it shares a table with)
    std::uint16_t rule = 0;
    KeyKind key = KeyKind::ip;
    std::uint8_t ip_group = 0;
    std::uint32_t sources = ~0u;  // the rule's source bits (simple rules only need this test)
    bool matches_kind = false;    // the rule's match includes the kind (else: reset only)
    bool reset = false;           // reset_on_success and the kind is auth_success
    bool simple = false;          // match is kind and source alone, no exclude
    bool needs_user = false;
  };
  const std::vector<Candidate>& candidates(const normalize::AuthEvent& e) const noexcept {
    return candidates_[static_cast<std::size_t>(e.kind) & (kKinds - 1)];
  }
  // Writes the event's steps (at most rules_.size()) and its deduplication keys; requests the
  // index slots (and dedup sets) when `prefetch`. Returns the number of steps.
  std::size_t plan(const normalize::AuthEvent& e, Step* steps, AttemptKeys& keys,
                   bool prefetch) const noexcept;
  void process(const normalize::AuthEvent& e, UnixMicros now, const AttemptKeys& attempt_keys,
               const Step* steps, std::size_t n_steps, std::vector<BanDecision>& out);

  // A new zeroed entry for `fp` (not in the table); at the cap idle or least recently seen
  // keys give way first.
  KeyEntry* insert_key(RuleTable& t, std::uint64_t fp, std::uint32_t now_s);
  // Frees an entry (idle, or evicted while live) and counts it.
  void release(RuleTable& t, KeyEntry* k, bool was_idle) noexcept;
  // A rule's window state and ban end in an entry of its table.
  static unsigned char* state(const CompiledRule& r, KeyEntry& k) noexcept {
    return reinterpret_cast<unsigned char*>(&k) + r.state_offset;
  }
  static std::uint32_t banned_until(const CompiledRule& r, const KeyEntry& k) noexcept {
    std::uint32_t v;
    std::memcpy(&v, reinterpret_cast<const unsigned char*>(&k) + r.banned_offset, 4);
    return v;
  }
  // Adds the event to the rule's window `s` (its state in an entry); true when the threshold
  // is reached.
  static bool count(const CompiledRule& r, unsigned char* s, std::uint32_t attempts,
                    std::uint32_t user32, std::uint32_t now_s) noexcept;
  static bool count_ring16(const CompiledRule& r, unsigned char* s, std::uint32_t attempts,
                           std::uint32_t now_s) noexcept;
  static bool count_distinct(const CompiledRule& r, unsigned char* s, std::uint32_t user32,
                             std::uint32_t now_s) noexcept;
  static bool count_distinct16(const CompiledRule& r, unsigned char* s, std::uint32_t user32,
                               std::uint32_t now_s) noexcept;
  static void reset_window(const CompiledRule& r, KeyEntry& k) noexcept {
    std::memset(state(r, k), 0, r.slot_bytes);
  }
  // Every member's window is over and no member's ban is in force.
  bool idle(const RuleTable& t, const KeyEntry& k, std::uint32_t now_s) const noexcept;
  void decide(CompiledRule& r, std::size_t index, const normalize::AuthEvent& e, UnixMicros now,
              KeyEntry& k, std::vector<BanDecision>& out);
  // True when `target` contains an address of a never_ban or trusted_proxies entry.
  bool covers_protected(const IpPrefix& target) const noexcept;
  void proxy_failure(std::size_t proxy, const normalize::AuthEvent& e, std::uint32_t attempts,
                     UnixMicros now);

  std::vector<CompiledRule> rules_;
  std::vector<RuleTable> tables_;
  // Some table's members are not neighbours in rule order, so an event's decisions may need
  // sorting back into rule order.
  bool steps_out_of_rule_order_ = false;
  // Per event kind, the rules that may apply to it (match the kind, or reset on success).
  std::vector<Candidate> candidates_[kKinds];
  // on_events' pipeline: steps are planned kPlanAhead events before evaluation, entries
  // requested kEntryAhead events before; kRing (a power of two > kPlanAhead) events' steps are kept.
  static constexpr std::size_t kPlanAhead = 8;
  static constexpr std::size_t kEntryAhead = 3;
  static constexpr std::size_t kRing = 16;
  std::vector<Step> steps_;  // kRing * rules_.size(), reused
  // Events whose kinds touch the same tables (or the deduplicator, or a trusted proxy's
  // warning) are one group: on_events may evaluate a batch group by group, each in order,
  // when no key can be evicted during it (eviction is the one thing groups share).
  std::uint8_t kind_group_[kKinds] = {};
  std::uint8_t groups_ = 1;
  std::vector<std::uint32_t> order_;            // on_events: event indices, group by group
  std::vector<std::uint8_t> group_of_;          // on_events: each event's group
  // While on_events evaluates groups: decide() notes the batch index of each decision.
  bool track_decisions_ = false;
  std::uint32_t current_event_ = 0;
  std::vector<std::uint32_t> decision_events_;
  std::vector<BanDecision> decision_scratch_;
  std::size_t step_count_[kRing] = {};
  AttemptKeys attempt_keys_[kRing];
  std::vector<IpPrefix> never_ban_;
  std::vector<IpPrefix> trusted_proxies_;
  std::vector<UnixMicros> proxy_last_warning_;
  RuleEngineOptions options_;
  std::unique_ptr<state::OffenceHistory> own_history_;
  state::OffenceHistory* history_ = nullptr;
  AttemptDeduplicator dedup_;
  std::uint64_t seed_ = 0;
  std::size_t tracked_ = 0;
  RuleEngineStats stats_;
};

}  // namespace authwall::rules
