#pragma once
// The rules stage's output: "ban this address (or prefix) for this long, because of this rule".
// A plain value with no pointers into the engine, so it can cross threads and outlive a rule
// reload (SIGHUP swaps the engine while decisions may still sit in the actions queue).
#include <cstdint>
#include <string_view>

#include "common/civil_time.h"
#include "common/ip_address.h"
#include "normalize/auth_event.h"

namespace authwall::rules {

// What a rule counts per: the client address (aggregated to the rule's prefix), the user name
// tried, or the pair.
enum class KeyKind : std::uint8_t { ip, user, ip_user };
std::string_view to_string(KeyKind k) noexcept;  // "ip", "user", "ip+user"

// Rule names are validated to at most this many bytes at load time.
inline constexpr std::size_t kMaxRuleNameLength = 63;

struct BanDecision {
  // What enters the nftables set: the event's address masked to the rule's prefix length
  // (a single address when the prefix is full length). For `user` and `ip+user` keys it is the
  // address of the event that reached the threshold.
  IpPrefix target;
  normalize::InlineString<kMaxRuleNameLength + 1> rule;  // rule name
  std::uint32_t rule_index = 0;  // position in the RuleSet the engine was built from
  KeyKind key_kind = KeyKind::ip;
  UnixMicros time = 0;           // the `now` of the event that crossed the threshold
  std::int64_t duration_seconds = 0;  // after escalation and the `max` cap
  std::uint32_t offence = 1;     // 1 = first ban of this target within the history window
  // The rule's prefix would have covered a never_ban or trusted_proxies entry (an attacker
  // sharing a /64 with the operator's own host, say), so `target` is the event's single
  // address instead.
  bool narrowed = false;
};

}  // namespace authwall::rules
