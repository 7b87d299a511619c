#pragma once
// NftBanBackend: bans as elements of nftables sets, through libnftnl + libmnl (no `nft` process).
//
// Layout (PRODUCT.md "nftables layout"), all inside `table inet <table>`, which it owns:
//   set banned_ipv4 { type ipv4_addr; flags interval, timeout; }
//   set banned_ipv6 { type ipv6_addr; flags interval, timeout; }
//   chain <hook> { type filter hook <hook> priority filter - 10; policy accept;
//     ip saddr @banned_ipv4 tcp dport { <ports> } counter drop
//     ip6 saddr @banned_ipv6 tcp dport { <ports> } counter drop }
// With `ports: all` the rules drop every packet from a banned source, whatever the protocol.
// Only TCP is matched when ports are listed: every mail protocol (SMTP, submission(s), IMAP(S),
// POP3(S), ManageSieve) is TCP, and a port list that also dropped UDP would silently block
// unrelated services (DNS on 53, QUIC on 443) that happen to share a number.
//
// Every apply() is ONE netlink batch (NFNL_MSG_BATCH_BEGIN ... END), i.e. one kernel
// transaction; its replies are read before apply() returns. A refused batch is retried: the
// changes the kernel did not complain about go again as one batch, each change it complained
// about alone (and a batch whose replies were lost is bisected), so every change ends either
// applied or reported with its errno.
//
// Re-ban refresh: kernels since 6.10 update an existing element's timeout when it is added again
// without NLM_F_EXCL; older kernels keep the old timeout (CrowdSec's bouncer has exactly this
// bug). prepare() probes which one this kernel does, on a scratch set, and falls back to
// "add, delete, add" inside the same transaction, which refreshes on every kernel.
// Unban is "add, delete" in one transaction, so deleting an already expired ban never fails.
//
// Thread-safety: one thread (see firewall_backend.h). Not copyable; owns its netlink socket.
// The layout is fixed at construction: to apply a changed configuration (reload), construct a
// new backend and prepare() it — the ban sets and their elements are kept, chains are rebuilt.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actions/firewall_backend.h"

namespace authwall::actions {

struct NftLayout {
  std::string table = "authwall";
  bool all_ports = false;
  std::vector<std::uint16_t> ports{25, 465, 587, 110, 995, 143, 993, 4190};
  std::vector<std::string> hooks{"input", "forward"};  // also accepted: "prerouting"
};

enum class RefreshMode : std::uint8_t {
  kProbe,         // prepare() decides from what this kernel does
  kUpdateInPlace, // one "add" per ban (kernel >= 6.10)
  kDeleteAndAdd,  // "add, delete, add" per ban (every kernel)
};

class NftBanBackend final : public FirewallBackend {
 public:
  explicit NftBanBackend(NftLayout layout, RefreshMode refresh = RefreshMode::kProbe);
  ~NftBanBackend() override;
  NftBanBackend(const NftBanBackend&) = delete;
  NftBanBackend& operator=(const NftBanBackend&) = delete;

  PrepareResult prepare() override;
  BatchResult apply(std::span<const BanChange> changes, UnixMicros now) override;
  bool list(std::vector<SetElement>& out, UnixMicros now, std::string& error) override;
  BatchResult remove(std::span<const SetElement> elements, UnixMicros now) override;
  bool flush(std::string& error) override;
  const BackendStats& stats() const noexcept override { return stats_; }

  // The refresh strategy in use (after prepare(), never kProbe).
  RefreshMode refresh_mode() const noexcept { return refresh_; }

  static constexpr const char* kSetIpv4 = "banned_ipv4";
  static constexpr const char* kSetIpv6 = "banned_ipv6";

 private:
  struct Impl;
  void commit_ops(BatchResult& result);
  void commit_positions(const std::vector<std::size_t>& positions, BatchResult& result);

  std::unique_ptr<Impl> impl_;
  RefreshMode refresh_;
  BackendStats stats_;
};

}  // namespace authwall::actions
