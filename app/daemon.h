#pragma once
// `authwall serve`: the live pipeline (PRODUCT.md "The pipeline").
//
// Threads
//   - I/O workers (a few, one io_context each): own their UDP sockets and TCP connections and run
//     parse -> normalize -> rules inline for every message, with one Normalizer per worker.
//   - Rule state is sharded: every rule has its own engines, one per shard, each behind its own
//     mutex (one thread inside a RuleEngine at a time). An event goes to the shard picked by the
//     hash of its client address masked to the rule's prefix, so one key always meets one
//     engine. Rules keyed by user alone are not sharded (one engine: a user is tried from many
//     addresses). Keeping each rule in its own engines is also what lets SIGHUP keep the windows
//     of every rule whose definition did not change.
//   - One actions thread: ban decisions go through one bounded queue; the thread drains
//     everything queued, commits it to the firewall backend as one batch, then updates the ban
//     book, the ban store and the metrics.
//   - The control thread (main): signals, HTTP (metrics.listen), the control socket, TCP
//     accepts, housekeeping.
//
// Back-pressure: processing is inline, so a TCP connection is read again only after its data
// went through the rules (the sender's window fills; nothing is lost) and a UDP socket's kernel
// buffer absorbs bursts (its overflow is counted). Only the ban queue can be full: the decision
// is then dropped and counted (the network path never blocks on the firewall).
#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/civil_time.h"
#include "common/ip_address.h"

namespace authwall::app {

struct ServeOptions {
  std::string config_path;
  bool dry_run = false;        // force the dry-run firewall backend
  std::size_t io_threads = 0;  // 0: two (this machine class has two cores)
  std::size_t shards = 0;      // rule shards per rule; 0: 4
};

// Runs until SIGTERM/SIGINT. Returns the process exit code (0 after a clean stop, 1 on a
// runtime failure at start-up, 2 for an invalid configuration).
int run_daemon(const ServeOptions& options);

struct ActiveBan {
  IpPrefix target;
  std::string rule;      // rule name, or "manual"
  UnixMicros created = 0;
  UnixMicros expires = 0;
  std::uint32_t offence = 1;
};

// The bans in force, as the actions thread committed them: what `authwall bans`,
// /api/v1/bans and authwall_bans_active report. Thread-safe (the actions thread writes, the
// control thread reads).
class BanBook {
 public:
  void put(const ActiveBan& ban);
  void erase(const IpPrefix& target);
  // The ban of exactly this target, if active at `now`.
  std::optional<ActiveBan> find(const IpPrefix& target, UnixMicros now) const;
  // An active ban whose target contains `target` (the same or a wider prefix).
  std::optional<ActiveBan> covering(const IpPrefix& target, UnixMicros now) const;
  // Active bans strictly inside `target` (longer prefixes it contains).
  std::vector<ActiveBan> inside(const IpPrefix& target, UnixMicros now) const;
  // Active bans at `now`, soonest expiry first.
  std::vector<ActiveBan> list(UnixMicros now) const;
  std::size_t count(UnixMicros now) const;
  // Forgets expired entries.
  void prune(UnixMicros now);

 private:
  // Ordered by family, then network bytes, then length: the bans inside a prefix are one
  // contiguous range, and "covering" is one lookup per prefix length in use.
  struct Key {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{};
    std::uint8_t length = 0;
    friend auto operator<=>(const Key&, const Key&) = default;
  };
  static Key key(const IpPrefix& p) noexcept { return Key{!p.network.is_v4, p.network.bytes, p.length}; }
  void forget_locked(std::map<Key, ActiveBan>::iterator it);

  mutable std::mutex mu_;
  std::map<Key, ActiveBan> bans_;
  std::map<std::pair<bool, std::uint8_t>, std::size_t> lengths_;  // (v6, length) -> bans
};

// `bans --json` and /api/v1/bans: one JSON array of objects with target, rule, expires
// (RFC 3339, UTC), created, remaining_seconds, offence.
std::string format_bans_json(const std::vector<ActiveBan>& bans, UnixMicros now);
// `bans` without --json: an aligned table, or a sentence when there is none.
std::string format_bans_table(const std::vector<ActiveBan>& bans, UnixMicros now);

}  // namespace authwall::app
