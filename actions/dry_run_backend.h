#pragma once
// DryRunBanBackend: the firewall backend with the kernel left alone (`serve --dry-run`, tests).
//
// It keeps the two sets in memory with the same bookkeeping the kernel does for NftBanBackend:
// elements are address ranges with a timeout, re-adding the same range refreshes the timeout,
// deleting an absent range succeeds, a range overlapping a different element is refused with
// EEXIST (as the kernel's interval sets refuse it), and an element is gone once `now` reaches its
// expiry. So decisions are logged, counted, persisted and listed exactly as with nftables.
// Thread-safety: one thread, like every FirewallBackend.
#include <array>
#include <cstdint>
#include <map>

#include "actions/firewall_backend.h"

namespace authwall::actions {

class DryRunBanBackend final : public FirewallBackend {
 public:
  PrepareResult prepare() override;
  BatchResult apply(std::span<const BanChange> changes, UnixMicros now) override;
  bool list(std::vector<SetElement>& out, UnixMicros now, std::string& error) override;
  BatchResult remove(std::span<const SetElement> elements, UnixMicros now) override;
  bool flush(std::string& error) override;
  const BackendStats& stats() const noexcept override { return stats_; }

  // Elements alive at `now` (both families).
  std::size_t size(UnixMicros now);

 private:
  struct Key {
    bool is_v6 = false;  // IPv4 first, as NftBanBackend lists them
    std::array<std::uint8_t, 16> first{};
    friend auto operator<=>(const Key&, const Key&) = default;
  };
  struct Entry {
    IpAddress first;
    IpAddress last;
    std::uint64_t timeout_ms = 0;
    UnixMicros expires = 0;
  };
  using Map = std::map<Key, Entry>;

  struct Op {
    bool add = true;
    IpAddress first;
    IpAddress last;
    std::uint32_t timeout_seconds = 0;
    std::size_t origin = 0;  // index in the caller's span
  };
  struct Undo {
    Key key;
    bool existed = false;
    Entry previous;
  };

  void expire(UnixMicros now);
  // The element intersecting [first, last], if any (elements never overlap each other).
  Map::iterator find_overlap(const IpAddress& first, const IpAddress& last);
  int apply_op(const Op& op, UnixMicros now);
  void rollback();
  // The same commit-and-retry procedure as NftBanBackend, with a transaction emulated by an
  // undo log: a batch with any refused op leaves no trace, then the ops nobody complained about
  // go again together and each refused op alone.
  void commit(const std::vector<std::size_t>& positions, UnixMicros now, BatchResult& result);
  BatchResult run(UnixMicros now, BatchResult result);

  std::vector<Op> ops_;
  std::vector<std::size_t> last_;  // last_change_per_target() of the current apply()
  std::vector<Undo> undo_;
  Map elements_;
  // No element expires before this, so expire() skips its walk until `now` reaches it.
  UnixMicros next_expiry_ = INT64_MAX;
  BackendStats stats_;
};

}  // namespace authwall::actions
