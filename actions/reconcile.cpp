#include "actions/reconcile.h"

#include <algorithm>
#include <array>
#include <tuple>
#include <vector>

namespace authwall::actions {
namespace {

struct RangeKey {
  bool is_v4;
  std::array<std::uint8_t, 16> first;
  std::array<std::uint8_t, 16> last;
  friend auto operator<=>(const RangeKey&, const RangeKey&) = default;
};

}  // namespace

std::vector<bool> inside_another(const std::vector<state::BanRecord>& bans) {
  std::vector<std::size_t> order(bans.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  // A prefix sorts before everything inside it: by family, network, then shorter first.
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const IpPrefix& x = bans[a].target;
    const IpPrefix& y = bans[b].target;
    return std::tie(y.network.is_v4, x.network.bytes, x.length) <
           std::tie(x.network.is_v4, y.network.bytes, y.length);
  });
  std::vector<bool> inside(bans.size(), false);
  std::vector<const IpPrefix*> open;
  for (const std::size_t i : order) {
    const IpPrefix& p = bans[i].target;
    while (!open.empty() && (open.back()->network.is_v4 != p.network.is_v4 ||
                             !open.back()->contains(p.network))) {
      open.pop_back();
    }
    inside[i] = !open.empty();
    open.push_back(&p);
  }
  return inside;
}

ReconcileResult reconcile(state::BanStore& store, FirewallBackend& backend, UnixMicros now) {
  ReconcileResult result;
  const long purged = store.purge_expired(now);
  if (purged < 0) {
    result.error = "cannot purge expired bans: " + store.last_error();
    return result;
  }
  result.expired_dropped = static_cast<std::size_t>(purged);

  std::vector<state::BanRecord> active;
  if (!store.active_bans(now, active)) {
    result.error = "cannot read active bans: " + store.last_error();
    return result;
  }
  std::vector<BanChange> changes;
  changes.reserve(active.size());
  std::vector<RangeKey> wanted;
  wanted.reserve(active.size());
  const std::vector<bool> held = inside_another(active);
  for (std::size_t i = 0; i < active.size(); ++i) {
    const state::BanRecord& ban = active[i];
    if (held[i]) {
      result.held.push_back(ban.target);
      continue;
    }
    changes.push_back(BanChange::until(ban.target, ban.expires, now));
    RangeKey k{ban.target.network.is_v4, {}, {}};
    IpAddress first, last;
    prefix_range(ban.target, first, last);
    k.first = first.bytes;
    k.last = last.bytes;
    wanted.push_back(k);
  }
  std::sort(wanted.begin(), wanted.end());
  // Ascending address order: the kernel's interval tree inserts a sorted run fastest (about a
  // third less CPU for 100k elements than the store's text order).
  std::sort(changes.begin(), changes.end(), [](const BanChange& a, const BanChange& b) {
    if (a.target.network.is_v4 != b.target.network.is_v4) return a.target.network.is_v4;
    return a.target.network.bytes < b.target.network.bytes;
  });

  std::vector<SetElement> present;
  if (!backend.list(present, now, result.error)) return result;
  std::vector<SetElement> foreign;
  for (const auto& e : present) {
    const RangeKey k{e.first.is_v4, e.first.bytes, e.last.bytes};
    if (!std::binary_search(wanted.begin(), wanted.end(), k)) foreign.push_back(e);
  }
  if (!foreign.empty()) {
    const BatchResult removed = backend.remove(foreign, now);
    result.foreign_removed = removed.applied;
    result.failed += removed.failures.size();
    if (!removed.error.empty()) {
      result.error = removed.error;
      return result;
    }
  }
  const BatchResult added = backend.apply(changes, now);
  result.restored = added.applied;
  result.failed += added.failures.size();
  result.error = added.error;
  result.ok = result.error.empty();
  return result;
}

}  // namespace authwall::actions
