#pragma once
// The firewall backend interface: what the daemon's actions thread drives.
//
// Contract
// - Threads: a backend is used by ONE thread (the actions thread) for its whole life; no method
//   is thread-safe and none blocks on anything but the kernel (nftables) or nothing (dry-run).
//   Statistics are read by the same thread and handed to metrics from there.
// - Ownership: the backend owns one nftables table (`table inet <table>`) and the netlink socket
//   it talks through; it never reads or writes anything else in the ruleset. Values passed in are
//   copied as needed; values returned (results, element lists) belong to the caller.
// - Time: `now` is microseconds since the Unix epoch, read once by the caller. The kernel expires
//   elements on its own clock; the dry-run backend uses `now` to do the same bookkeeping.
// - Idempotence: adding a target already present refreshes its timeout; deleting a target that
//   is absent succeeds. Applying the same batch twice leaves the same state, so a batch whose
//   outcome is unknown can always be retried.
// - Errors never throw: results carry per-element errno values and one batch-level message.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/civil_time.h"
#include "common/ip_address.h"

namespace authwall::actions {

struct BanChange {
  enum class Kind : std::uint8_t { kAdd, kDelete };
  Kind kind = Kind::kAdd;
  IpPrefix target;                     // an address (/32, /128) or a prefix (/24, /64)
  std::uint32_t timeout_seconds = 0;   // kAdd only: the ban's remaining duration, >= 1

  static BanChange add(const IpPrefix& target, std::uint32_t timeout_seconds) noexcept {
    return BanChange{Kind::kAdd, target, timeout_seconds};
  }
  // An add for a ban ending at `expires`: its remaining time rounded up (a ban with 0.4 s left
  // still gets its second rather than being dropped), at least 1 s.
  static BanChange until(const IpPrefix& target, UnixMicros expires, UnixMicros now) noexcept {
    const UnixMicros seconds = (expires - now + kMicrosPerSecond - 1) / kMicrosPerSecond;
    return add(target, static_cast<std::uint32_t>(std::clamp<UnixMicros>(seconds, 1, 0xffffffffLL)));
  }
  static BanChange remove(const IpPrefix& target) noexcept {
    return BanChange{Kind::kDelete, target, 0};
  }
};

struct ElementFailure {
  std::size_t index = 0;  // into the span that was applied
  int error = 0;          // errno as the kernel reported it (EEXIST: overlaps another element)
};

struct BatchResult {
  std::size_t applied = 0;               // changes that are now in effect
  std::vector<ElementFailure> failures;  // changes that are not, in index order
  std::size_t batches_sent = 0;          // 1 when the first commit succeeded; more after retries
  std::string error;                     // batch-level problem (socket, permission), else empty

  bool ok() const noexcept { return failures.empty() && error.empty(); }
};

// One element as it is in a set now. Elements we added are always prefixes; an element somebody
// else added may be an arbitrary range, which is why the range is kept too.
struct SetElement {
  IpAddress first;                     // inclusive
  IpAddress last;                      // inclusive
  bool is_prefix = false;              // [first, last] is exactly `prefix`
  IpPrefix prefix;
  std::uint64_t timeout_ms = 0;        // the element's full timeout; 0 = never expires
  std::uint64_t expires_in_ms = 0;     // time left; 0 when it has no timeout
};

struct PrepareResult {
  bool ok = false;
  bool permission_denied = false;      // EPERM: CAP_NET_ADMIN missing (do not retry in a loop)
  bool created_table = false;          // the table did not exist (first start, or after reboot)
  std::size_t repaired = 0;            // sets/chains created or replaced because missing or wrong
  std::string error;                   // one sentence naming what failed
};

struct BackendStats {
  std::uint64_t batches_committed = 0;
  std::uint64_t batches_failed = 0;    // commits the kernel refused (each then retried)
  std::uint64_t elements_applied = 0;
  std::uint64_t element_errors = 0;    // changes that failed even when retried alone
};

class FirewallBackend {
 public:
  virtual ~FirewallBackend() = default;

  // Creates the table layout, or verifies it and repairs what is missing or wrong (a flushed
  // ruleset after a reboot is rebuilt; existing set elements survive a plain daemon restart).
  // Call once at start-up before anything else; a failure is final (see permission_denied).
  virtual PrepareResult prepare() = 0;

  // Applies all changes as one commit. When the commit is refused, the changes are retried in
  // smaller commits down to one change each, so every change ends applied or in `failures`.
  // Several changes to the same target in one call: the last one decides the outcome of all.
  // An add with timeout_seconds == 0 fails with EINVAL (a ban never expires by accident).
  virtual BatchResult apply(std::span<const BanChange> changes, UnixMicros now) = 0;

  // Reads every element of both sets with its remaining timeout (for reconciliation and
  // inspection). Returns false with `error` set when the sets cannot be read.
  virtual bool list(std::vector<SetElement>& out, UnixMicros now, std::string& error) = 0;

  // Deletes exactly these elements (as returned by list(), so foreign ranges work too).
  virtual BatchResult remove(std::span<const SetElement> elements, UnixMicros now) = 0;

  // Empties both sets in one commit.
  virtual bool flush(std::string& error) = 0;

  virtual const BackendStats& stats() const noexcept = 0;
};

// Coalescing within one batch: only the last change per target decides the target's final state,
// so both backends send only that one (the kernel refuses some repeated add/delete sequences of
// one element inside a transaction). `last[i]` is the index of the last change with the same
// target as change i (i itself when none follows).
void last_change_per_target(std::span<const BanChange> changes, std::vector<std::size_t>& last);
// Reports every superseded change with the outcome of the change that superseded it. `result`
// must hold the outcome of the deciding changes, failures sorted by index; keeps them sorted.
void settle_superseded(const std::vector<std::size_t>& last, BatchResult& result,
                       BackendStats& stats);

// The inclusive address range a prefix covers.
void prefix_range(const IpPrefix& prefix, IpAddress& first, IpAddress& last) noexcept;
// Whether [first, last] is exactly one prefix; fills `out` when it is.
bool range_to_prefix(const IpAddress& first, const IpAddress& last, IpPrefix& out) noexcept;

}  // namespace authwall::actions
