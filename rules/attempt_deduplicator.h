#pragma once
// Exactly-once counting of failed attempts (PRODUCT.md "Each failed attempt counts exactly once").
//
// One failed login can be reported by several lines: a Postfix SASL warning, the Dovecot auth
// process line that served it, and the session summary (`disconnect ... auth=0/1`, Dovecot's
// "auth failed, 3 attempts"). The deduplicator sits in front of the rule windows and answers,
// per auth_failure event, how many of its attempts no earlier line has already reported; the
// attempt is counted at the first line that reports it.
//
// How lines are tied (docs/rules.md "Exactly once"):
// - Lines of one session (same `session`) share a counter of attempts already counted. A
//   per-attempt line adds its attempts; a session summary reports the session's total, counts
//   only what exceeds the counter, and ends the session (Postfix reuses host+pid+client for the
//   next connection from that client to the same smtpd process).
// - A Dovecot auth-process line without a session (Dovecot serving Postfix SASL) and a Postfix
//   SASL failure from the same address and user within `tie_window` are one attempt, whichever
//   arrives first. The Postfix line still adds 1 to its session's counter, so the session summary
//   after it adds nothing.
//
// State is fixed-size (set-associative tables, oldest entry replaced when a set is full) and
// allocated once at construction; `new_attempts` never allocates. Not thread-safe: one per
// rule engine shard, and the daemon shards by client address (all lines of a session and both
// lines of a tied pair carry the same address).
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/civil_time.h"
#include "common/prefetch.h"
#include "normalize/auth_event.h"
#include "rules/hash.h"

namespace authwall::rules {

// How a failed-attempt line relates to the other lines that may report the same attempts.
enum class AttemptRole : std::uint8_t {
  standalone,        // not tied to anything: counts as it comes
  session_attempt,   // reports `attempts` new attempts within its session
  session_total,     // reports the session's total failures; the session ends with it
  session_high_water,  // per attempt or a summary (cannot tell): counts what exceeds the session's count
  sasl_attempt,      // a Postfix SASL failure: session_attempt that may tie to a Dovecot auth line
  unsessioned_auth,  // a Dovecot auth-process failure without session (serving Postfix SASL)
};

// Decided from the event's source, service, session, mechanism and reason (docs/rules.md
// "Exactly once" has the table).
AttemptRole classify_attempt(const normalize::AuthEvent& e) noexcept;

// What the deduplicator needs of one event, hashed once (AttemptDeduplicator::keys).
struct AttemptKeys {
  bool relevant = false;  // an auth_failure
  AttemptRole role = AttemptRole::standalone;
  bool shared_session = false;  // derived for a pid-less Postfix line: connections may share it
  std::uint64_t session = 0;  // session tag; 0 = none
  std::uint64_t ip = 0;       // address tag for tying lines of two daemons; 0 = not tied
  std::uint64_t user = 0;     // user hash for tying; 0 = no user
};

struct DedupOptions {
  std::uint32_t session_capacity = 1u << 16;  // sessions remembered (rounded up to 4 * 2^n)
  std::uint32_t tie_capacity = 1u << 14;      // untied Dovecot/Postfix attempts remembered
  // Dovecot logs the auth failure, then Postfix logs its SASL warning after the failure delay
  // (auth_failure_delay, 2 s by default): 5 s covers that with room for syslog jitter.
  UnixMicros tie_window = 5 * kMicrosPerSecond;
  // A session silent this long is forgotten (its summary line was lost or never comes).
  UnixMicros session_idle = 3600 * kMicrosPerSecond;
  std::uint64_t seed = 0;
};

struct DedupStats {
  std::uint64_t duplicate_attempts = 0;  // attempts not counted because an earlier line had them
  std::uint64_t tied_attempts = 0;       // of which tied Dovecot auth line <-> Postfix SASL line
  std::uint64_t session_evictions = 0;   // live sessions dropped for lack of room
};

class AttemptDeduplicator {
 public:
  explicit AttemptDeduplicator(const DedupOptions& options = {});

  // Attempts of `e` that no earlier line reported (0 .. e.attempts). Events other than
  // auth_failure are returned unchanged (e.attempts). `now` is the same clock the engine uses.
  std::uint32_t new_attempts(const normalize::AuthEvent& e, UnixMicros now) noexcept {
    return new_attempts(e, keys(e), now);
  }
  // The same in two steps, so a batch can hash every event and prefetch its table sets
  // before the first lookup. `k` must be keys(e).
  AttemptKeys keys(const normalize::AuthEvent& e) const noexcept;
  // The same with the user's hash made by the caller — nonzero(hash_bytes(e.user, seed())), 0
  // without a user — so it is computed once per event. Inline: the rule engine calls it for
  // every event.
  AttemptKeys keys(const normalize::AuthEvent& e, std::uint64_t user_hash) const noexcept {
    AttemptKeys k;
    if (e.kind != normalize::EventKind::auth_failure) return k;
    k.relevant = true;
    k.role = classify_attempt(e);
    if (k.role != AttemptRole::standalone && k.role != AttemptRole::unsessioned_auth) {
      k.shared_session = e.session.empty();
      k.session = k.shared_session
                      ? pidless_postfix_session(e)
                      : nonzero(hash_bytes(e.session.view(), options_.seed ^ static_cast<std::uint64_t>(e.source)));
    }
    if (k.role == AttemptRole::sasl_attempt || k.role == AttemptRole::unsessioned_auth) {
      std::uint64_t a, b;
      std::memcpy(&a, e.ip.bytes.data(), 8);
      std::memcpy(&b, e.ip.bytes.data() + 8, 8);
      k.ip = hash_words(a, b, options_.seed, e.ip.is_v4 ? 0x5a5a : 0);
      k.user = user_hash != 0 && needs_tie_form(e.user) ? tie_user_hash(e.user) : user_hash;
    }
    return k;
  }
  std::uint64_t seed() const noexcept { return options_.seed; }

  // Tying a Postfix line to a Dovecot line compares the user name in the form both daemons can
  // log it: Dovecot's auth lines cut a name longer than 64 bytes to at most 61 (at a UTF-8
  // character boundary, so 58 to 61) and "...", and replace control characters with '?';
  // Postfix replaces every byte that is not printable ASCII with '?'. So bytes that are not
  // printable ASCII compare as '?', a Dovecot "..." cut is dropped, and only the first 58 bytes
  // count. Names already in that form (short, printable ASCII: nearly all) keep their hash.
  static bool needs_tie_form(std::string_view user) noexcept {
    if (user.size() >= kTiedUserBytes) return true;
    for (const char c : user) {
      if (static_cast<unsigned char>(c - 0x20) > 0x5e) return true;
    }
    return false;
  }
  std::uint64_t tie_user_hash(std::string_view user) const noexcept;
  // A Postfix line without a pid (rsyslog's traditional forward format cuts the tag to 32
  // characters, and a long service name such as postfix/submissions-proxyprotocol/smtpd loses
  // the pid) has no session in the event. Client + program + host stand for its connection, so
  // the disconnect summary still counts only what the SASL warnings did not. Concurrent
  // connections of one client to one service share it, so a summary takes its own attempts out
  // of the shared count instead of ending it: the total stays right (a summary-only attempt
  // may be counted at a later summary instead of its own); without it every failure counted
  // twice.
  std::uint64_t pidless_postfix_session(const normalize::AuthEvent& e) const noexcept;
  static constexpr std::size_t kLoggedUserMax = 64;  // Dovecot's MAX_LOG_USERNAME_LEN
  static constexpr std::size_t kTiedUserBytes = kLoggedUserMax - 6;  // a cut keeps >= 58

  // Requests the table sets `k` will need.
  void prefetch(const AttemptKeys& k) const noexcept {
    if (k.session != 0) prefetch_line(&sessions_[k.session & session_sets_mask_]);
    if (k.ip != 0) prefetch_line(&ties_[k.ip & tie_sets_mask_]);
  }
  std::uint32_t new_attempts(const normalize::AuthEvent& e, const AttemptKeys& k,
                             UnixMicros now) noexcept;

  const DedupStats& stats() const noexcept { return stats_; }

 private:
  static constexpr std::size_t kWays = 4;
  // A set is one cache line: one lookup, one miss at most.
  struct SessionSlot {
    std::uint64_t tag = 0;      // 0 = empty
    std::uint32_t last_s = 0;   // seconds (Unix) of the session's last line
    std::uint32_t counted = 0;  // attempts of this session counted so far
  };
  struct alignas(64) SessionSet {
    SessionSlot way[kWays];
  };
  // 16 bytes, so a set is one line: 32-bit tags of the address and user (the set is chosen by
  // other bits of the address tag) and the time in milliseconds modulo 2^32 (ages are only ever
  // compared with the tie window, and a slot 24 days old is gone long before).
  struct TieSlot {
    std::uint32_t ip_tag = 0;    // 0 = empty
    std::uint32_t user_tag = 0;  // 0 = no user
    std::uint32_t time_ms = 0;
    std::uint16_t count = 0;
    bool from_dovecot = false;
  };
  struct alignas(64) TieSet {
    TieSlot way[kWays];
  };
  static_assert(sizeof(SessionSet) == 64 && sizeof(TieSet) == 64);

  // The session's slot; with `create`, made if missing, and marked seen at `now` either way.
  SessionSlot* find_session(std::uint64_t tag, UnixMicros now, bool create) noexcept;
  // One attempt of a line that may tie: consumes an attempt the other daemon's line recorded
  // (true), else records this one for the other daemon's line to find (false).
  bool tie(std::uint64_t ip_tag, std::uint64_t user_hash, bool from_dovecot,
           UnixMicros now) noexcept;
  // The attempts of `e` that no line of the other daemon already reported (each one tie()).
  std::uint32_t untied_attempts(const normalize::AuthEvent& e, const AttemptKeys& k,
                                bool from_dovecot, UnixMicros now) noexcept;

  DedupOptions options_;
  std::vector<SessionSet> sessions_;
  std::vector<TieSet> ties_;
  std::size_t session_sets_mask_ = 0;
  std::size_t tie_sets_mask_ = 0;
  std::uint32_t session_idle_s_ = 0;  // options_.session_idle in seconds
  std::int32_t tie_window_ms_ = 0;    // options_.tie_window in milliseconds
  DedupStats stats_;
};

}  // namespace authwall::rules
