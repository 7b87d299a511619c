#include "rules/attempt_deduplicator.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <span>

#include "common/prefetch.h"
#include "rules/hash.h"

namespace authwall::rules {

using normalize::AuthEvent;
using normalize::EventKind;
using normalize::EventSource;

namespace {

// Login-process reasons that Dovecot logs both per attempt and in the disconnect summary:
// "Login failed: Plaintext authentication disabled" (once per refused USER/PASS or LOGIN) and
// "Disconnected (tried to use disallowed plaintext auth[, N attempts])"; the proxy's "Login
// failed to <backend>" and "Disconnected (proxy dest auth failed)". The two cannot be told apart
// from the event, so such a line counts only what exceeds the session's count so far.
// Login-process lines that may stand for one attempt or for the session so far.
constexpr std::string_view kHighWaterReasons[] = {"proxy_dest_auth_failed"};

bool in(std::string_view reason, const std::string_view* begin, const std::string_view* end) {
  for (; begin != end; ++begin) {
    if (reason == *begin) return true;
  }
  return false;
}

// The tie table's 32-bit tags: the high half of a 64-bit tag (the low bits choose the set).
std::uint32_t tag32(std::uint64_t tag) noexcept {
  const auto t = static_cast<std::uint32_t>(tag >> 32);
  return t == 0 ? 1 : t;
}

std::uint32_t millis(UnixMicros t) noexcept {
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(t / 1000));
}

std::uint32_t seconds(UnixMicros t) noexcept {
  if (t <= 0) return 0;
  const UnixMicros s = t / kMicrosPerSecond;
  return s >= 0xffffffffLL ? 0xffffffffU : static_cast<std::uint32_t>(s);
}

std::size_t sets_for(std::uint32_t capacity, std::size_t ways) {
  std::size_t sets = std::bit_ceil(std::max<std::size_t>(capacity / ways, 1));
  return sets;
}

}  // namespace

AttemptRole classify_attempt(const AuthEvent& e) noexcept {
  const bool has_session = !e.session.empty();
  switch (e.source) {
    case EventSource::postfix:
      // "SASL <mech> authentication failed" always names the mechanism; the only other Postfix
      // auth_failure is the `disconnect ... auth=0/N` summary, which never does.
      // Both are in a session even without a pid (AttemptDeduplicator::keys).
      if (!e.mechanism.empty() || e.reason == "sasl_failed") return AttemptRole::sasl_attempt;
      return AttemptRole::session_total;
    case EventSource::dovecot:
      // Auth-process lines carry no service; login-process lines always do.
      if (e.service.empty()) {
        return has_session ? AttemptRole::session_attempt : AttemptRole::unsessioned_auth;
      }
      if (!has_session) return AttemptRole::standalone;
      // "Login failed: Plaintext authentication disabled": once per refused LOGIN/USER+PASS.
      if (e.reason == "plaintext_refused") return AttemptRole::session_attempt;
      if (in(e.reason, std::begin(kHighWaterReasons), std::end(kHighWaterReasons))) {
        return AttemptRole::session_high_water;
      }
      // Every other login-process failure is a disconnect summary ("auth failed, N attempts",
      // "tried to use unsupported auth mechanism", "user disabled", ...).
      return AttemptRole::session_total;
    case EventSource::custom:
      break;
  }
  return has_session ? AttemptRole::session_attempt : AttemptRole::standalone;
}

AttemptDeduplicator::AttemptDeduplicator(const DedupOptions& options) : options_(options) {
  const std::size_t ss = sets_for(options.session_capacity, kWays);
  const std::size_t ts = sets_for(options.tie_capacity, kWays);
  sessions_.resize(ss);
  ties_.resize(ts);
  session_sets_mask_ = ss - 1;
  tie_window_ms_ = static_cast<std::int32_t>(
      std::clamp<UnixMicros>(options.tie_window / 1000, 0, 86'400'000));
  session_idle_s_ = static_cast<std::uint32_t>(
      std::min<UnixMicros>(options.session_idle / kMicrosPerSecond, 0xffffffff));
  tie_sets_mask_ = ts - 1;
}

[[gnu::always_inline]] inline AttemptDeduplicator::SessionSlot*
AttemptDeduplicator::find_session(std::uint64_t tag, UnixMicros now, bool create) noexcept {
  SessionSlot* set = sessions_[tag & session_sets_mask_].way;
  const std::uint32_t now_s = seconds(now);
  const auto stale = [&](const SessionSlot& s) {
    return s.tag != 0 && now_s > s.last_s && now_s - s.last_s > session_idle_s_;
  };
  for (std::size_t i = 0; i < kWays; ++i) {
    if (set[i].tag == tag) {
      if (stale(set[i])) set[i].counted = 0;  // the same id reused long after: a new session
      if (create) set[i].last_s = std::max(set[i].last_s, now_s);
      return &set[i];
    }
  }
  if (!create) return nullptr;
  // A free or stale way, else the least recently seen one.
  SessionSlot* victim = nullptr;
  SessionSlot* oldest = nullptr;
  for (std::size_t i = 0; i < kWays && victim == nullptr; ++i) {
    SessionSlot& s = set[i];
    if (s.tag == 0 || stale(s)) {
      victim = &s;
    } else if (oldest == nullptr || s.last_s < oldest->last_s) {
      oldest = &s;
    }
  }
  if (victim == nullptr) {
    victim = oldest;
    ++stats_.session_evictions;
  }
  *victim = SessionSlot{tag, now_s, 0};
  return victim;
}

[[gnu::always_inline]] inline bool AttemptDeduplicator::tie(std::uint64_t ip, std::uint64_t user_hash,
                                                           bool from_dovecot, UnixMicros now) noexcept {
  TieSlot* set = ties_[ip & tie_sets_mask_].way;
  const std::uint32_t ip32 = tag32(ip);
  const std::uint32_t user32 = user_hash == 0 ? 0 : tag32(user_hash);
  const std::uint32_t now_ms = millis(now);
  // One pass over the set finds all three: the first attempt the other daemon's line left
  // (taken if there is one), else this daemon's own slot for the address and user (counted
  // up), else where a new slot goes (the first empty way, else the one seen longest ago).
  TieSlot* own = nullptr;
  TieSlot* victim = nullptr;
  std::int32_t victim_age = 0;
  for (TieSlot& t : std::span(set, kWays)) {
    const std::int32_t age = static_cast<std::int32_t>(now_ms - t.time_ms);
    if (t.ip_tag == ip32) {
      if (t.from_dovecot != from_dovecot) {
        // A Postfix line without sasl_username (older Postfix) ties to any user from that
        // address.
        if (t.count != 0 && age <= tie_window_ms_ && age >= -tie_window_ms_ &&
            (user32 == 0 || t.user_tag == 0 || t.user_tag == user32)) {
          if (--t.count == 0) t = TieSlot{};
          return true;
        }
      } else if (own == nullptr && t.user_tag == user32 && age <= tie_window_ms_) {
        own = &t;
      }
    }
    if (victim != nullptr && victim->ip_tag == 0) continue;
    if (victim == nullptr || t.ip_tag == 0 || age > victim_age) {
      victim = &t;
      victim_age = age;
    }
  }
  if (own != nullptr) {
    if (own->count < 0xffff) ++own->count;
    own->time_ms = now_ms;
  } else {
    *victim = TieSlot{ip32, user32, now_ms, 1, from_dovecot};
  }
  return false;
}

[[gnu::always_inline]] inline std::uint32_t AttemptDeduplicator::untied_attempts(
    const AuthEvent& e, const AttemptKeys& k, bool from_dovecot, UnixMicros now) noexcept {
  std::uint32_t fresh = 0;
  for (std::uint32_t i = 0; i < e.attempts; ++i) {
    if (tie(k.ip, k.user, from_dovecot, now)) {
      ++stats_.tied_attempts;
      ++stats_.duplicate_attempts;
    } else {
      ++fresh;
    }
  }
  return fresh;
}

std::uint64_t AttemptDeduplicator::pidless_postfix_session(const AuthEvent& e) const noexcept {
  std::uint64_t a, b;
  std::memcpy(&a, e.ip.bytes.data(), 8);
  std::memcpy(&b, e.ip.bytes.data() + 8, 8);
  const std::uint64_t client = hash_words(a, b, options_.seed ^ 0x9e3779b97f4a7c15ULL, e.ip.is_v4 ? 4 : 6);
  return nonzero(hash_bytes(e.host, hash_bytes(e.program, client)));
}

std::uint64_t AttemptDeduplicator::tie_user_hash(std::string_view user) const noexcept {
  char form[kLoggedUserMax];
  const std::size_t n = std::min(user.size(), kLoggedUserMax);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(user[i]);
    form[i] = c - 0x20u > 0x5eu ? '?' : static_cast<char>(c);
  }
  std::size_t length = n;
  if (user.size() >= kTiedUserBytes + 3 && user.size() <= kLoggedUserMax &&
      std::memcmp(form + n - 3, "...", 3) == 0) {
    length -= 3;  // Dovecot's cut
  }
  return nonzero(hash_bytes(std::string_view(form, std::min(length, kTiedUserBytes)), options_.seed));
}

AttemptKeys AttemptDeduplicator::keys(const AuthEvent& e) const noexcept {
  if (e.kind != EventKind::auth_failure) return AttemptKeys{};
  return keys(e, e.has_user ? nonzero(hash_bytes(e.user, options_.seed)) : 0);
}

std::uint32_t AttemptDeduplicator::new_attempts(const AuthEvent& e, const AttemptKeys& k,
                                                UnixMicros now) noexcept {
  if (!k.relevant) return e.attempts;
  switch (k.role) {
    case AttemptRole::standalone:
      return e.attempts;

    case AttemptRole::unsessioned_auth:
      return untied_attempts(e, k, /*from_dovecot=*/true, now);

    case AttemptRole::sasl_attempt:
    case AttemptRole::session_attempt: {
      if (k.session != 0) {
        find_session(k.session, now, true)->counted += e.attempts;
      }
      if (k.role == AttemptRole::session_attempt) return e.attempts;
      return untied_attempts(e, k, /*from_dovecot=*/false, now);
    }

    case AttemptRole::session_high_water: {
      SessionSlot* s = find_session(k.session, now, true);
      const std::uint32_t fresh = e.attempts > s->counted ? e.attempts - s->counted : 0;
      s->counted += fresh;
      stats_.duplicate_attempts += e.attempts - fresh;
      return fresh;
    }

    case AttemptRole::session_total: {
      SessionSlot* s = find_session(k.session, now, false);
      if (s == nullptr) return e.attempts;
      const std::uint32_t counted = s->counted;
      if (k.shared_session && counted > e.attempts) {
        s->counted = counted - e.attempts;  // the other connections' attempts stay
        stats_.duplicate_attempts += e.attempts;
        return 0;
      }
      *s = SessionSlot{};  // the session ends with its summary
      const std::uint32_t fresh = e.attempts > counted ? e.attempts - counted : 0;
      stats_.duplicate_attempts += e.attempts - fresh;
      return fresh;
    }
  }
  return e.attempts;
}

}  // namespace authwall::rules
