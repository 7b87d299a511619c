#pragma once
// Start-up reconciliation: make the kernel's ban sets match the ban store.
//
// The store is the record of intent (every ban is written there before it goes to the kernel),
// so after a restart, a reboot (empty sets), a crash between the SQLite write and the kernel
// commit, or someone editing our sets by hand, the store wins:
//   1. rows that expired while we were down are purged from the store;
//   2. set elements no active ban accounts for (foreign, or unbanned before the crash) are
//      deleted in one batch;
//   3. every active ban is (re-)added with its remaining time in one batch — an element already
//      present gets its timeout reset to exactly what the store says. A ban inside a wider
//      active ban is not (interval sets refuse overlapping elements): it is listed in `held`
//      and waits for the wider one to end, as while running.
// Run it on the actions thread after FirewallBackend::prepare() and before the first ban.
#include <cstddef>
#include <string>
#include <vector>

#include "actions/firewall_backend.h"
#include "common/civil_time.h"
#include "state/ban_store.h"

namespace authwall::actions {

struct ReconcileResult {
  bool ok = false;
  std::size_t restored = 0;         // active bans now in the kernel with their remaining time
  std::size_t expired_dropped = 0;  // store rows whose ban ended while we were not running
  std::size_t foreign_removed = 0;  // set elements without an active ban, deleted
  std::size_t failed = 0;           // bans or deletions the kernel refused
  std::vector<IpPrefix> held;       // active bans inside a wider active ban, not in the kernel
  std::string error;                // empty when ok
};

// For each ban, whether another of them strictly contains its target (prefixes are either
// nested or disjoint, so one sorted sweep with a stack of open prefixes finds them).
std::vector<bool> inside_another(const std::vector<state::BanRecord>& bans);

ReconcileResult reconcile(state::BanStore& store, FirewallBackend& backend, UnixMicros now);

}  // namespace authwall::actions
