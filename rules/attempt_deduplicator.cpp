#include "rules/attempt_deduplicator.h"

#include <bit>
#include <cstring>

#include "rules/hash.h"

namespace authwall::rules {

using normalize::AuthEvent;
using normalize::EventKind;
using normalize::EventSource;

namespace {

// Reason codes of lines that summarise a whole session rather than report one attempt.
// Postfix: `disconnect from ... auth=0/2`. Dovecot login processes: "(auth failed, N attempts
// in S secs)" on Disconnected / Aborted login / Login aborted / Client has quit / Remote closed.
constexpr std::string_view kSessionTotalReasons[] = {
    "auth_summary",      // Postfix disconnect auth=N/M
    "auth_failed",       // Dovecot "auth failed, N attempts"
    "session_summary",
};

bool is_session_total(const AuthEvent& e) noexcept {
  for (auto r : kSessionTotalReasons) {
    if (e.reason == r) return true;
  }
  // Postfix's SASL failure always names its mechanism ("SASL LOGIN authentication failed");
  // the only other Postfix auth_failure line is the disconnect summary, which never does.
  return e.source == EventSource::postfix && e.mechanism.empty();
}

std::uint64_t nonzero(std::uint64_t h) noexcept { return h == 0 ? 1 : h; }

std::uint64_t ip_tag(const IpAddress& ip, std::uint64_t seed) noexcept {
  std::uint64_t a, b;
  std::memcpy(&a, ip.bytes.data(), 8);
  std::memcpy(&b, ip.bytes.data() + 8, 8);
  return nonzero(mix64(mix64(a ^ seed) ^ b ^ (ip.is_v4 ? 0x5a5a : 0)));
}

std::size_t sets_for(std::uint32_t capacity, std::size_t ways) {
  std::size_t sets = std::bit_ceil(std::max<std::size_t>(capacity / ways, 1));
  return sets;
}

}  // namespace

AttemptRole classify_attempt(const AuthEvent& e) noexcept {
  if (e.session.empty()) {
    return e.source == EventSource::dovecot ? AttemptRole::unsessioned_auth
                                            : AttemptRole::standalone;
  }
  if (is_session_total(e)) return AttemptRole::session_total;
  return e.source == EventSource::postfix ? AttemptRole::sasl_attempt
                                          : AttemptRole::session_attempt;
}

AttemptDeduplicator::AttemptDeduplicator(const DedupOptions& options) : options_(options) {
  const std::size_t ss = sets_for(options.session_capacity, kWays);
  const std::size_t ts = sets_for(options.tie_capacity, kWays);
  sessions_.resize(ss * kWays);
  ties_.resize(ts * kWays);
  session_sets_mask_ = ss - 1;
  tie_sets_mask_ = ts - 1;
}

AttemptDeduplicator::SessionSlot* AttemptDeduplicator::find_session(std::uint64_t tag,
                                                                    UnixMicros now,
                                                                    bool create) noexcept {
  SessionSlot* set = &sessions_[(tag & session_sets_mask_) * kWays];
  SessionSlot* free_slot = nullptr;
  SessionSlot* oldest = nullptr;
  for (std::size_t i = 0; i < kWays; ++i) {
    SessionSlot& s = set[i];
    const bool stale = s.tag != 0 && now - s.last > options_.session_idle;
    if (s.tag == tag) {
      if (stale) s.counted = 0;  // the same id reused long after: a new session
      return &s;
    }
    if (s.tag == 0 || stale) {
      if (free_slot == nullptr) free_slot = &s;
    } else if (oldest == nullptr || s.last < oldest->last) {
      oldest = &s;
    }
  }
  if (!create) return nullptr;
  SessionSlot* victim = free_slot;
  if (victim == nullptr) {
    victim = oldest;
    ++stats_.session_evictions;
  }
  *victim = SessionSlot{tag, now, 0};
  return victim;
}

bool AttemptDeduplicator::take_tie(std::uint64_t ip, std::uint64_t user_hash, bool from_dovecot,
                                   UnixMicros now) noexcept {
  TieSlot* set = &ties_[(ip & tie_sets_mask_) * kWays];
  for (std::size_t i = 0; i < kWays; ++i) {
    TieSlot& t = set[i];
    if (t.ip_tag != ip || t.from_dovecot == from_dovecot || t.count == 0) continue;
    const UnixMicros age = now >= t.time ? now - t.time : t.time - now;
    if (age > options_.tie_window) continue;
    // A Postfix line without sasl_username (older Postfix) ties to any user from that address.
    if (user_hash != 0 && t.user_hash != 0 && t.user_hash != user_hash) continue;
    if (--t.count == 0) t = TieSlot{};
    return true;
  }
  return false;
}

void AttemptDeduplicator::put_tie(std::uint64_t ip, std::uint64_t user_hash, bool from_dovecot,
                                  UnixMicros now) noexcept {
  TieSlot* set = &ties_[(ip & tie_sets_mask_) * kWays];
  TieSlot* victim = &set[0];
  for (std::size_t i = 0; i < kWays; ++i) {
    TieSlot& t = set[i];
    if (t.ip_tag == ip && t.user_hash == user_hash && t.from_dovecot == from_dovecot &&
        now - t.time <= options_.tie_window) {
      ++t.count;
      t.time = now;
      return;
    }
    if (victim->ip_tag != 0 && (t.ip_tag == 0 || t.time < victim->time)) victim = &t;
  }
  *victim = TieSlot{ip, user_hash, now, 1, from_dovecot};
}

std::uint32_t AttemptDeduplicator::new_attempts(const AuthEvent& e, UnixMicros now) noexcept {
  if (e.kind != EventKind::auth_failure) return e.attempts;
  const AttemptRole role = classify_attempt(e);
  const std::uint64_t seed = options_.seed;
  switch (role) {
    case AttemptRole::standalone:
      return e.attempts;

    case AttemptRole::unsessioned_auth: {
      const std::uint64_t ip = ip_tag(e.ip, seed);
      const std::uint64_t user = e.has_user ? nonzero(hash_bytes(e.user, seed)) : 0;
      std::uint32_t fresh = 0;
      for (std::uint32_t i = 0; i < e.attempts; ++i) {
        if (take_tie(ip, user, /*from_dovecot=*/false, now)) {
          ++stats_.tied_attempts;
          ++stats_.duplicate_attempts;
        } else {
          put_tie(ip, user, /*from_dovecot=*/true, now);
          ++fresh;
        }
      }
      return fresh;
    }

    case AttemptRole::sasl_attempt:
    case AttemptRole::session_attempt: {
      const std::uint64_t tag =
          nonzero(hash_bytes(e.session.view(), seed ^ static_cast<std::uint64_t>(e.source)));
      SessionSlot* s = find_session(tag, now, true);
      s->counted += e.attempts;
      s->last = now;
      if (role == AttemptRole::session_attempt) return e.attempts;
      const std::uint64_t ip = ip_tag(e.ip, seed);
      const std::uint64_t user = e.has_user ? nonzero(hash_bytes(e.user, seed)) : 0;
      std::uint32_t fresh = 0;
      for (std::uint32_t i = 0; i < e.attempts; ++i) {
        if (take_tie(ip, user, /*from_dovecot=*/true, now)) {
          ++stats_.tied_attempts;
          ++stats_.duplicate_attempts;
        } else {
          put_tie(ip, user, /*from_dovecot=*/false, now);
          ++fresh;
        }
      }
      return fresh;
    }

    case AttemptRole::session_total: {
      const std::uint64_t tag =
          nonzero(hash_bytes(e.session.view(), seed ^ static_cast<std::uint64_t>(e.source)));
      SessionSlot* s = find_session(tag, now, false);
      if (s == nullptr) return e.attempts;
      const std::uint32_t counted = s->counted;
      *s = SessionSlot{};  // the session ends with its summary
      const std::uint32_t fresh = e.attempts > counted ? e.attempts - counted : 0;
      stats_.duplicate_attempts += e.attempts - fresh;
      return fresh;
    }
  }
  return e.attempts;
}

}  // namespace authwall::rules
