#pragma once
// The bans in force, as the daemon's actions thread committed them: what `authwall bans`,
// /api/v1/bans and authwall_bans_active report, and what a new decision is checked against
// (an address already inside a longer ban needs no firewall change).
#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/civil_time.h"
#include "common/ip_address.h"

namespace authwall::app {

struct ActiveBan {
  IpPrefix target;
  std::string rule;      // rule name, or "manual"
  UnixMicros created = 0;
  UnixMicros expires = 0;
  std::uint32_t offence = 1;
  // False while a wider ban holds the address range in the firewall: nftables interval sets
  // refuse overlapping elements, so a ban inside a wider one waits in the book (and the store)
  // and takes over when the wider one ends (ActionsWorker::release_held).
  bool in_firewall = true;
};

// Thread-safe: the actions thread writes, the control thread reads.
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
  // Bans active at `now` whose target strictly contains `target` (shorter prefixes).
  std::vector<ActiveBan> wider(const IpPrefix& target, UnixMicros now) const;
  // Active bans that are not in the firewall (in_firewall == false), a prefix before
  // everything inside it; costs what it returns, not the size of the book.
  std::vector<ActiveBan> held(UnixMicros now) const;
  bool any_held() const;
  void set_in_firewall(const IpPrefix& target, bool in_firewall);
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
  // Calls f(ban) for each ban active at `now` whose target contains `target` (the same prefix
  // too, unless `strictly_wider`).
  template <class F>
  void for_each_cover_locked(const IpPrefix& target, UnixMicros now, bool strictly_wider, F&& f) const;

  mutable std::mutex mu_;
  std::map<Key, ActiveBan> bans_;
  std::map<std::pair<bool, std::uint8_t>, std::size_t> lengths_;  // (v6, length) -> bans
  std::set<Key> held_;  // entries with in_firewall == false (expired ones until pruned)
};

// `bans --json` and /api/v1/bans: one JSON array of objects with target, rule, expires
// (RFC 3339, UTC), created, remaining_seconds, offence.
std::string format_bans_json(const std::vector<ActiveBan>& bans, UnixMicros now);
// `bans` without --json: an aligned table, or a sentence when there is none.
std::string format_bans_table(const std::vector<ActiveBan>& bans, UnixMicros now);

}  // namespace authwall::app
