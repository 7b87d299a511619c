#include "rules/rule_engine.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>

#include "rules/hash.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace authwall::rules {

using normalize::AuthEvent;
using normalize::EventKind;

namespace {

// Window state, per key, after the KeyEntry header:
//   ring:     u8 head, u8 fill, u16 unused, u32 time[threshold]
//   ring16:   u32 base, u8 head, u8 fill, u16 offset[threshold] (time = base + offset - 1)
//   distinct: u32 lower bound of the times, u32 pairs, u32 user_hash[lanes], u32 time[lanes]
//   distinct16: u32 lower bound of the times, u32 pairs, u32 base, u32 user_hash[lanes],
//             u16 offset[lanes] (time = base + offset - 1)
//             (lanes = threshold rounded up to 4)
//   buckets:  u32 newest bucket number (0 = none yet), u32 sum over the window, u16 cell[32]
constexpr std::uint32_t kBuckets = 32;
// Longest window kept as 16-bit offsets (count_ring16), and how far behind a line the base is
// put when it moves forward: the line's offset is then kRing16Span + 1, leaving ~16,000 s before
// the next move, and times within kRing16Span - window before the line stay exact.
constexpr std::uint32_t kRing16MaxWindow = 21600;
constexpr std::uint32_t kRing16Span = 49152;
// Rules share a table only while an entry stays within the four lines a lookup prefetches.
constexpr std::uint32_t kMaxSharedEntry = 256;

std::uint32_t to_seconds(UnixMicros t) noexcept {
  if (t <= 0) return 0;
  const UnixMicros s = t / kMicrosPerSecond;
  return s >= 0xfffffffeLL ? 0xfffffffeU : static_cast<std::uint32_t>(s);
}

std::uint32_t load32(const unsigned char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void store32(unsigned char* p, std::uint32_t v) noexcept { std::memcpy(p, &v, 4); }
std::uint16_t load16(const unsigned char* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
void store16(unsigned char* p, std::uint16_t v) noexcept { std::memcpy(p, &v, 2); }

void address_mask(bool v4, int length, std::uint64_t out[2]) {
  IpAddress ones;
  ones.is_v4 = v4;
  for (int i = 0; i < (v4 ? 4 : 16); ++i) ones.bytes[static_cast<std::size_t>(i)] = 0xff;
  const IpPrefix p = IpPrefix::of(ones, length);
  std::memcpy(out, p.network.bytes.data(), 16);
}

bool unspecified(const IpAddress& ip) noexcept {
  std::uint64_t w[2];
  std::memcpy(w, ip.bytes.data(), 16);
  return (w[0] | w[1]) == 0;
}


// A ring of `threshold` stamps with its head and fill (one byte each) at head_fill[0..1]:
// writes min(attempts, threshold) copies of `stamp`; when the ring is full, `oldest` is the
// stamp the next write would replace and the result is true.
template <typename Stamp>
[[gnu::always_inline]] inline bool push_ring(unsigned char* head_fill, unsigned char* stamps,
                                             std::uint32_t threshold, std::uint32_t attempts,
                                             Stamp stamp, Stamp& oldest) noexcept {
  const std::uint32_t n = std::min(attempts, threshold);
  std::uint32_t head = head_fill[0];
  for (std::uint32_t i = 0; i < n; ++i) {
    std::memcpy(stamps + sizeof(Stamp) * head, &stamp, sizeof(Stamp));
    // head + 1, or 0 past the end, without a branch (where the ring wraps is unpredictable).
    const std::uint32_t next = head + 1;
    head = next & (0u - static_cast<std::uint32_t>(next != threshold));
  }
  head_fill[0] = static_cast<unsigned char>(head);
  head_fill[1] = static_cast<unsigned char>(std::min<std::uint32_t>(head_fill[1] + n, threshold));
  if (head_fill[1] < threshold) return false;
  std::memcpy(&oldest, stamps + sizeof(Stamp) * head, sizeof(Stamp));
  return true;
}

// Up to `threshold` (user hash, last time) pairs, stored as two arrays of `lanes` (a multiple
// of 4; the lanes past the threshold stay empty) so four pairs are tested at once, after the
// number of pairs and a lower bound of their times (state: u32 min_time, u32 n). Times are
// Stamps: u32 seconds, or u16 offsets with time = offset + stamp_to_time (count_distinct16).
// While the lower bound is inside the window no pair can have expired, and an event only looks
// for its user; otherwise expired pairs are dropped first. The user's pair is refreshed or
// added (in the first free lane, or over the oldest pair when every lane is live); true when
// the pairs reach the threshold.
// 16-bit times, as ring16 and distinct16 windows keep them: time = base + offset - 1, offset 0 =
// "ancient" (or empty). A line at now_s needs a new base when it is before the base or 65,535 s
// or more after it (count_ring16 says why these moves keep the answers exact).
bool needs_rebase(std::uint32_t base, std::uint32_t now_s) noexcept {
  return now_s < base || now_s - base >= 0xffff;
}
// Moves the base for a line at now_s: back to the line, or forward to kRing16Span before it.
// Rewrites the `count` offsets at `offsets`; those whose time falls before the new base become
// ancient (0), and `became_ancient(i)` is called for each; later ones are capped at 0xffff.
// Returns the new base.
template <typename BecameAncient>
std::uint32_t rebase(unsigned char* offsets, std::uint32_t count, std::uint32_t base,
                     std::uint32_t now_s, BecameAncient became_ancient) noexcept {
  const std::uint32_t new_base = now_s < base ? now_s : now_s - kRing16Span;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint32_t off = load16(offsets + 2 * i);
    if (off == 0) continue;  // ancient stays ancient
    const std::uint32_t t = base + off - 1;
    if (t < new_base) {
      store16(offsets + 2 * i, 0);
      became_ancient(i);
    } else {
      store16(offsets + 2 * i, static_cast<std::uint16_t>(std::min<std::uint32_t>(t - new_base + 1, 0xffff)));
    }
  }
  return new_base;
}

template <typename Stamp>
[[gnu::always_inline]] inline bool count_pairs(unsigned char* state, unsigned char* hashes,
                                               unsigned char* stamps, std::uint32_t lanes,
                                               std::uint32_t threshold, std::uint32_t window,
                                               bool always_scan, std::uint32_t user32,
                                               std::uint32_t now_s, std::uint32_t now_stamp,
                                               std::uint32_t stamp_to_time) noexcept {
  const auto load_stamp = [&](std::uint32_t lane) -> std::uint32_t {
    Stamp v;
    std::memcpy(&v, stamps + sizeof(Stamp) * lane, sizeof(Stamp));
    return v;
  };
  const auto store_stamp = [&](std::uint32_t lane, std::uint32_t v) {
    const auto s = static_cast<Stamp>(v);
    std::memcpy(stamps + sizeof(Stamp) * lane, &s, sizeof(Stamp));
  };
  std::uint32_t min_time = load32(state);
  std::uint32_t n = load32(state + 4);
  std::uint64_t used = 0;   // bit per lane
  std::uint64_t found = 0;  // bit per lane
  const bool may_expire = always_scan || (n != 0 && min_time <= now_s && now_s - min_time >= window);
#if defined(__SSE2__)
  const __m128i user_v = _mm_set1_epi32(static_cast<int>(user32));
  const __m128i zero = _mm_setzero_si128();
  if (!may_expire) {
    // Nothing expired: look for the user, and for the used lanes only if it is not there.
    for (std::uint32_t lane = 0; lane < lanes; lane += 4) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hashes + 4 * lane));
      found |= static_cast<std::uint64_t>(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(h, user_v)))) << lane;
    }
    for (std::uint32_t lane = 0; found == 0 && lane < lanes; lane += 4) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hashes + 4 * lane));
      const int empty = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(h, zero)));
      used |= static_cast<std::uint64_t>(~empty & 0xf) << lane;
    }
  } else {
    // Unsigned comparisons as signed ones on values with the top bit flipped; 16-bit stamps
    // are widened to 32 bits for them.
    const __m128i flip = _mm_set1_epi32(static_cast<int>(0x80000000u));
    const __m128i now_v = _mm_set1_epi32(static_cast<int>(now_stamp));
    const __m128i now_f = _mm_xor_si128(now_v, flip);
    const __m128i window_f = _mm_xor_si128(_mm_set1_epi32(static_cast<int>(window)), flip);
    for (std::uint32_t lane = 0; lane < lanes; lane += 4) {
      unsigned char* at = stamps + sizeof(Stamp) * lane;
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hashes + 4 * lane));
      __m128i t;
      if constexpr (sizeof(Stamp) == 4) {
        t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
      } else {
        t = _mm_unpacklo_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(at)), zero);
      }
      const __m128i future = _mm_cmpgt_epi32(_mm_xor_si128(t, flip), now_f);  // t > now
      const __m128i age_f = _mm_xor_si128(_mm_sub_epi32(now_v, t), flip);
      const __m128i young = _mm_cmpgt_epi32(window_f, age_f);  // now - t < window
      const __m128i keep = _mm_andnot_si128(_mm_cmpeq_epi32(h, zero), _mm_or_si128(future, young));
      // Expired pairs are cleared (so a name is never in two lanes).
      _mm_storeu_si128(reinterpret_cast<__m128i*>(hashes + 4 * lane), _mm_and_si128(h, keep));
      if constexpr (sizeof(Stamp) == 4) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(at), _mm_and_si128(t, keep));
      } else {
        // The 0 / all-ones lane masks survive a signed pack to 16 bits.
        const __m128i raw = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(at));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(at), _mm_and_si128(raw, _mm_packs_epi32(keep, keep)));
      }
      const __m128i match = _mm_and_si128(keep, _mm_cmpeq_epi32(h, user_v));
      used |= static_cast<std::uint64_t>(_mm_movemask_ps(_mm_castsi128_ps(keep))) << lane;
      found |= static_cast<std::uint64_t>(_mm_movemask_ps(_mm_castsi128_ps(match))) << lane;
    }
  }
#else
  for (std::uint32_t lane = 0; lane < lanes; ++lane) {
    std::uint32_t h = load32(hashes + 4 * lane);
    const std::uint32_t t = load_stamp(lane);
    if (may_expire && h != 0 && t <= now_stamp && now_stamp - t >= window) {
      h = 0;
      store32(hashes + 4 * lane, 0);
      store_stamp(lane, 0);
    }
    if (h != 0) used |= std::uint64_t{1} << lane;
    if (h != 0 && h == user32) found |= std::uint64_t{1} << lane;
  }
#endif
  if (may_expire) {
    // Count and bound the pairs that are left.
    n = static_cast<std::uint32_t>(std::popcount(used));
    std::uint32_t min_stamp = 0xffffffffu;
    for (std::uint64_t m = used; m != 0; m &= m - 1) {
      min_stamp = std::min(min_stamp, load_stamp(static_cast<std::uint32_t>(std::countr_zero(m))));
    }
    min_time = min_stamp + stamp_to_time;
  }
  if (found != 0) {  // the user's pair: its time becomes max(t, now)
    const auto lane = static_cast<std::uint32_t>(std::countr_zero(found));
    store_stamp(lane, std::max(load_stamp(lane), now_stamp));
  } else {
    const std::uint64_t mask = threshold >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << threshold) - 1;
    std::uint32_t lane;
    if (const std::uint64_t free = mask & ~used; free != 0) {
      lane = static_cast<std::uint32_t>(std::countr_zero(free));
      ++n;
    } else {
      lane = 0;  // every lane live: the oldest pair (the first of equals) gives way
      for (std::uint32_t i = 1; i < threshold; ++i) {
        if (load_stamp(i) < load_stamp(lane)) lane = i;
      }
    }
    store32(hashes + 4 * lane, user32);
    store_stamp(lane, now_stamp);
    min_time = n == 1 ? now_s : std::min(min_time, now_s);
  }
  store32(state, min_time);
  store32(state + 4, n);
  return n >= threshold;
}

}  // namespace

RuleEngine::CompiledMatch RuleEngine::compile_match(const MatchSpec& spec) {
  CompiledMatch m;
  if (spec.kind_mask != 0) m.kinds = spec.kind_mask;
  if (spec.source_mask != 0) m.sources = spec.source_mask;
  for (std::size_t f = 0; f < kMatchFieldCount; ++f) {
    if (spec.fields[f]) m.fields.push_back({static_cast<MatchField>(f), &*spec.fields[f]});
  }
  if (!spec.ip.empty()) m.ip = &spec.ip;
  return m;
}

RuleEngine::RuleEngine(const RuleSet& rules, std::vector<IpPrefix> never_ban,
                       std::vector<IpPrefix> trusted_proxies, RuleEngineOptions options)
    : never_ban_(std::move(never_ban)),
      trusted_proxies_(std::move(trusted_proxies)),
      proxy_last_warning_(trusted_proxies_.size(), std::numeric_limits<UnixMicros>::min()),
      options_(std::move(options)),
      dedup_([&] {
        DedupOptions d = options_.dedup;
        if (d.seed == 0) d.seed = options_.seed;
        if (d.seed == 0) d.seed = (static_cast<std::uint64_t>(std::random_device{}()) << 32) | 1;
        return d;
      }()) {
  seed_ = options_.seed;
  if (seed_ == 0) {
    std::random_device rd;
    seed_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }
  if (options_.history != nullptr) {
    history_ = options_.history;
  } else {
    own_history_ = std::make_unique<state::MemoryOffenceHistory>();
    history_ = own_history_.get();
  }
  rules_.reserve(rules.rules.size());
  for (const RuleSpec& spec : rules.rules) {
    CompiledRule r;
    r.spec = spec;
    r.window_s = static_cast<std::uint32_t>(std::min<std::int64_t>(spec.window_seconds, 0x7fffffff));
    if (spec.distinct_user) {
      r.distinct_lanes = (spec.threshold + 3) / 4 * 4;
      if (r.window_s <= kRing16MaxWindow && !options_.reference_windows) {
        r.window = WindowKind::distinct16;
        r.slot_bytes = 12 + 6 * r.distinct_lanes;
      } else {
        r.window = WindowKind::distinct;
        r.slot_bytes = 8 + 8 * r.distinct_lanes;
        r.always_scan = options_.reference_windows;
      }
    } else if (spec.threshold <= kMaxExactThreshold && r.window_s <= kRing16MaxWindow &&
               !options_.reference_windows) {
      r.window = WindowKind::ring16;
      r.slot_bytes = 6 + 2 * spec.threshold;
    } else if (spec.threshold <= kMaxExactThreshold) {
      r.window = WindowKind::ring;
      r.slot_bytes = 4 + 4 * spec.threshold;
    } else {
      r.window = WindowKind::buckets;
      r.bucket_width_s = std::max<std::uint32_t>(1, (r.window_s + kBuckets - 1) / kBuckets);
      r.bucket_span = (r.window_s + r.bucket_width_s - 1) / r.bucket_width_s;
      r.slot_bytes = 8 + 2 * kBuckets;
    }
    r.needs_user = spec.key != KeyKind::ip || spec.distinct_user;
    address_mask(true, spec.prefix_v4, r.mask4);
    address_mask(false, spec.prefix_v6, r.mask6);
    // Its table: that of an earlier rule with the same key, prefixes and match when sharing
    // is on and there is room (members never outnumber the key cap, and an entry stays within
    // the four lines a lookup prefetches), else a new one.
    RuleTable* t = nullptr;
    for (RuleTable& other : tables_) {
      const RuleSpec& first = rules_[other.members[0]].spec;
      if (options_.share_tables && other.member_count < kMaxMembers &&
          other.member_count < options_.max_tracked_keys && first.key == spec.key &&
          first.prefix_v4 == spec.prefix_v4 && first.prefix_v6 == spec.prefix_v6 &&
          first.match == spec.match && first.exclude == spec.exclude &&
          other.entry_bytes + 4 + r.slot_bytes <= kMaxSharedEntry) {
        t = &other;
        break;
      }
    }
    if (t == nullptr) {
      t = &tables_.emplace_back();
      t->entry_bytes = sizeof(KeyEntry);
      r.banned_offset = offsetof(KeyEntry, banned_until);
    } else {
      r.banned_offset = static_cast<std::uint16_t>(t->entry_bytes);
      t->entry_bytes += 4;
    }
    r.state_offset = static_cast<std::uint16_t>(t->entry_bytes);
    t->entry_bytes += r.slot_bytes;
    t->window_s = std::max(t->window_s, r.window_s);
    t->members[t->member_count++] = static_cast<std::uint16_t>(rules_.size());
    r.table = static_cast<std::uint16_t>(t - tables_.data());
    rules_.push_back(std::move(r));
  }
  for (RuleTable& t : tables_) {
    t.keys = std::make_unique<KeyTable>(t.entry_bytes - sizeof(KeyEntry), options_.max_tracked_keys);
  }
  // Second pass, now that rules_ will not move: matchers point into the specs.
  std::size_t groups = 0;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    CompiledRule& r = rules_[i];
    r.match = compile_match(r.spec.match);
    r.has_exclude = r.spec.exclude.has_value();
    if (r.has_exclude) r.exclude = compile_match(*r.spec.exclude);
    // Rules with the same address masks share one fingerprint per event: the group of an
    // earlier rule with those masks, else the next group number.
    std::size_t j = 0;
    while (j < i && (std::memcmp(rules_[j].mask4, r.mask4, sizeof r.mask4) != 0 ||
                     std::memcmp(rules_[j].mask6, r.mask6, sizeof r.mask6) != 0)) {
      ++j;
    }
    r.ip_group = j < i ? rules_[j].ip_group : static_cast<std::uint8_t>(std::min<std::size_t>(groups++, 255));
  }
  // Candidates table by table, so the rules sharing a table are neighbours (plan() marks the
  // later ones kSameEntry).
  std::size_t previous_rule = 0;
  for (const RuleTable& t : tables_) {
    for (std::size_t m = 0; m < t.member_count; ++m) {
      const std::size_t i = t.members[m];
      if (i < previous_rule) steps_out_of_rule_order_ = true;
      previous_rule = i;
      const CompiledRule& r = rules_[i];
      for (std::size_t kind = 0; kind < kKinds; ++kind) {
        Candidate c;
        c.rule = static_cast<std::uint16_t>(i);
        c.key = r.spec.key;
        c.ip_group = r.ip_group;
        c.sources = r.match.sources;
        c.matches_kind = (r.match.kinds >> kind & 1) != 0;
        c.reset = r.spec.reset_on_success && kind == static_cast<std::size_t>(EventKind::auth_success);
        c.simple = r.match.fields.empty() && r.match.ip == nullptr && !r.has_exclude;
        c.needs_user = r.needs_user;
        c.table = t.keys.get();
        if (c.matches_kind || c.reset) candidates_[kind].push_back(c);
      }
    }
  }
  steps_.resize(kRing * std::max<std::size_t>(rules_.size(), 1));
  // Kind groups: kinds linked by a rule that matches (or resets on) both, as connected
  // components. The deduplicator is reached only by auth_failure, and on_events puts every
  // event from a trusted proxy in auth_failure's group (they share its warning's rate limit).
  std::uint8_t parent[kKinds];
  for (std::size_t k = 0; k < kKinds; ++k) parent[k] = static_cast<std::uint8_t>(k);
  const auto root = [&](std::size_t k) {
    while (parent[k] != k) k = parent[k];
    return k;
  };
  for (const CompiledRule& r : rules_) {
    std::uint32_t kinds = r.match.kinds & ((1u << kKinds) - 1);
    if (r.spec.reset_on_success) kinds |= 1u << static_cast<unsigned>(EventKind::auth_success);
    if (kinds == 0) continue;
    const std::size_t first = static_cast<std::size_t>(std::countr_zero(kinds));
    for (std::size_t k = first + 1; k < kKinds; ++k) {
      if ((kinds >> k & 1) != 0) parent[root(k)] = static_cast<std::uint8_t>(root(first));
    }
  }
  std::uint8_t number[kKinds];
  std::fill(std::begin(number), std::end(number), 0xff);
  groups_ = 0;
  for (std::size_t k = 0; k < kKinds; ++k) {
    const std::size_t r = root(k);
    if (number[r] == 0xff) number[r] = groups_++;
    kind_group_[k] = number[r];
  }
}

RuleEngine::~RuleEngine() = default;

bool RuleEngine::idle(const RuleTable& t, const KeyEntry& k, std::uint32_t now_s) const noexcept {
  if (k.last_seen > now_s || now_s - k.last_seen < t.window_s) return false;
  for (std::size_t m = 0; m < t.member_count; ++m) {
    if (banned_until(rules_[t.members[m]], k) > now_s) return false;
  }
  return true;
}

void RuleEngine::release(RuleTable& t, KeyEntry* k, bool was_idle) noexcept {
  t.keys->erase(k);
  tracked_ -= t.member_count;
  (was_idle ? stats_.expirations : stats_.evictions) += t.member_count;
}

KeyEntry* RuleEngine::insert_key(RuleTable& t, std::uint64_t fp, std::uint32_t now_s) {
  bool was_idle = false;
  const auto over_cap = [&] {
    return tracked_ + t.member_count > options_.max_tracked_keys ||
           t.keys->size() >= t.keys->max_entries();
  };
  if (over_cap()) {
    // At the cap: evict from this table (if it holds nothing, from the largest one) until the
    // new key fits; members never outnumber the cap, so a few victims always make room.
    for (std::size_t tries = 0; tries < kMaxMembers && over_cap(); ++tries) {
      RuleTable* from = &t;
      if (t.keys->size() == 0) {
        for (auto& other : tables_) {
          if (other.keys->size() > from->keys->size()) from = &other;
        }
      }
      const auto from_idle = [&](const KeyEntry& k) { return idle(*from, k, now_s); };
      KeyEntry* v = from->keys->pick_victim(8, from_idle, was_idle);
      if (v == nullptr) break;
      release(*from, v, was_idle);
    }
  } else if (t.keys->full()) {
    // Reuse an idle key's slot rather than grow the table. Idle keys are otherwise left in
    // place (a returning client finds its entry) until sweep() or the cap reclaims them.
    const auto is_idle = [&](const KeyEntry& k) { return idle(t, k, now_s); };
    if (KeyEntry* v = t.keys->pick_victim(8, is_idle, was_idle); v != nullptr && was_idle) {
      release(t, v, true);
    }
  }
  tracked_ += t.member_count;
  return t.keys->insert(fp, now_s);
}

// The ring with 16-bit times: attempt time = base + offset - 1, offset 0 = "ancient" (expired for
// every line the answer can still be exact for). When a line comes more than 65534 s after the
// base, the base moves forward to (now - window - slack): times older than that become ancient.
// They are outside the window of this line and of any later line up to `slack` seconds older than
// it (slack = kRing16Span - window >= 7.6 h), so the answers are those of full times unless a
// line is more than `slack` older than one already counted for the key. A line earlier than the
// base moves the base back to it (later times kept, capped at 65535 s after it).
[[gnu::always_inline]] inline bool RuleEngine::count_ring16(const CompiledRule& r,
                                                            unsigned char* slots,
                                                            std::uint32_t attempts,
                                                            std::uint32_t now_s) noexcept {
  unsigned char* offsets = slots + 6;
  const std::uint32_t threshold = r.spec.threshold;
  std::uint32_t base = load32(slots);
  if (slots[5] == 0) {  // empty: start at the event
    base = now_s;
  } else if (needs_rebase(base, now_s)) {
    base = rebase(offsets, threshold, base, now_s, [](std::uint32_t) {});
  }
  store32(slots, base);
  const std::uint32_t now_off = now_s - base + 1;
  std::uint16_t oldest16 = 0;
  if (!push_ring(slots + 4, offsets, threshold, attempts, static_cast<std::uint16_t>(now_off), oldest16)) {
    return false;
  }
  const std::uint32_t oldest = oldest16;
  return oldest != 0 && (oldest >= now_off || now_off - oldest < r.window_s);
}

bool RuleEngine::count_distinct(const CompiledRule& r, unsigned char* state, std::uint32_t user32,
                                std::uint32_t now_s) noexcept {
  unsigned char* hashes = state + 8;
  return count_pairs<std::uint32_t>(state, hashes, hashes + 4 * r.distinct_lanes, r.distinct_lanes,
                                    r.spec.threshold, r.window_s, r.always_scan, user32, now_s,
                                    now_s, 0);
}

// The same with 16-bit times (windows up to kRing16MaxWindow), moved like ring16's: state u32
// min_time, u32 n, u32 base, then the hashes and the offsets. Pairs that become ancient when the
// base moves forward are dropped. Exact under the same condition as ring16.
bool RuleEngine::count_distinct16(const CompiledRule& r, unsigned char* state, std::uint32_t user32,
                                  std::uint32_t now_s) noexcept {
  unsigned char* hashes = state + 12;
  unsigned char* offsets = hashes + 4 * r.distinct_lanes;
  std::uint32_t n = load32(state + 4);
  std::uint32_t base = load32(state + 8);
  if (n == 0) {  // no pairs (every lane empty): start at the event
    base = now_s;
  } else if (needs_rebase(base, now_s)) {
    base = rebase(offsets, r.distinct_lanes, base, now_s, [&](std::uint32_t lane) {
      store32(hashes + 4 * lane, 0);
      --n;
    });
    store32(state + 4, n);
  }
  store32(state + 8, base);
  return count_pairs<std::uint16_t>(state, hashes, offsets, r.distinct_lanes, r.spec.threshold,
                                    r.window_s, false, user32, now_s, now_s - base + 1, base - 1);
}

[[gnu::always_inline]] inline bool RuleEngine::count(const CompiledRule& r, unsigned char* slots,
                                                     std::uint32_t attempts, std::uint32_t user32,
                                                     std::uint32_t now_s) noexcept {
  const std::uint32_t threshold = r.spec.threshold;
  switch (r.window) {
    case WindowKind::ring: {
      // The last `threshold` attempt times; the threshold is reached exactly when the oldest
      // of them is still inside the window.
      std::uint32_t oldest = 0;
      if (!push_ring(slots, slots + 4, threshold, attempts, now_s, oldest)) return false;
      return oldest >= now_s || now_s - oldest < r.window_s;
    }
    case WindowKind::ring16:
      return count_ring16(r, slots, attempts, now_s);
    case WindowKind::distinct:
      return count_distinct(r, slots, user32, now_s);
    case WindowKind::distinct16:
      return count_distinct16(r, slots, user32, now_s);
    case WindowKind::buckets: {
      // 32 buckets of bucket_width_s; the window is the newest bucket_span of them, whose sum
      // is kept (so an event reads two cells, not the whole window).
      unsigned char* cells = slots + 8;
      std::uint32_t newest = load32(slots);
      std::uint32_t sum = load32(slots + 4);
      std::uint32_t bn = now_s / r.bucket_width_s;
      if (newest == 0) newest = bn;
      if (bn > newest) {
        if (bn - newest >= r.bucket_span) {  // the whole window has passed
          std::memset(cells, 0, 2 * kBuckets);
          sum = 0;
        } else {
          // Each new bucket enters empty; the one that falls out of the window leaves the sum.
          for (std::uint32_t b = newest + 1; b <= bn; ++b) {
            sum -= load16(cells + 2 * ((b - r.bucket_span) % kBuckets));
            store16(cells + 2 * (b % kBuckets), 0);
          }
        }
        newest = bn;
      } else {
        bn = newest;  // a late event counts in the newest bucket
      }
      unsigned char* cell = cells + 2 * (bn % kBuckets);
      const std::uint32_t old = load16(cell);
      const std::uint32_t now_cell = std::min<std::uint32_t>(old + attempts, 0xffff);
      store16(cell, static_cast<std::uint16_t>(now_cell));
      sum += now_cell - old;
      store32(slots, newest);
      store32(slots + 4, sum);
      return sum >= threshold;
    }
  }
  return false;
}

void RuleEngine::decide(CompiledRule& r, std::size_t index, const AuthEvent& e, UnixMicros now,
                        KeyEntry& k, std::vector<BanDecision>& out) {
  BanDecision d;
  d.target = IpPrefix::of(e.ip, e.ip.is_v4 ? r.spec.prefix_v4 : r.spec.prefix_v6);
  // The event's own address is in neither list (process() returned before), but its prefix
  // may hold one: ban the address alone rather than lock out what the operator protects.
  if (d.target.length < (e.ip.is_v4 ? 32 : 128) && covers_protected(d.target)) {
    d.target = IpPrefix::of(e.ip, e.ip.is_v4 ? 32 : 128);
    d.narrowed = true;
    ++stats_.narrowed_decisions;
  }
  d.rule.assign(r.spec.name);
  d.rule_index = static_cast<std::uint32_t>(index);
  d.key_kind = r.spec.key;
  d.time = now;
  // Escalation counts earlier bans of the same target by the same rule (fail2ban's default,
  // bantime.overalljails = false): one event crossing two rules' thresholds is one offence
  // for each, not a repeat offence for the second.
  const std::string target = d.target.to_string();
  const std::uint32_t earlier = history_->count_since(
      target, r.spec.name, now - options_.history_window_seconds * kMicrosPerSecond);
  double duration = static_cast<double>(r.spec.ban.duration_seconds) *
                    std::pow(r.spec.ban.factor, static_cast<double>(earlier));
  duration = std::min(duration, static_cast<double>(r.spec.ban.max_seconds));
  d.duration_seconds = std::max<std::int64_t>(1, static_cast<std::int64_t>(duration));
  d.offence = earlier + 1;
  if (!history_->record(target, r.spec.name, now)) ++stats_.history_errors;
  // A narrowed ban does not cover the key's other addresses, so the key is not marked banned:
  // its window starts over and the next address of the prefix is banned on its own count.
  if (!d.narrowed) {
    const std::uint64_t until = static_cast<std::uint64_t>(to_seconds(now)) +
                                static_cast<std::uint64_t>(d.duration_seconds);
    const auto until32 = static_cast<std::uint32_t>(std::min<std::uint64_t>(until, 0xfffffffeU));
    std::memcpy(reinterpret_cast<unsigned char*>(&k) + r.banned_offset, &until32, 4);
  }
  reset_window(r, k);
  ++stats_.decisions;
  out.push_back(d);
  if (track_decisions_) decision_events_.push_back(current_event_);
}

bool RuleEngine::covers_protected(const IpPrefix& target) const noexcept {
  // An entry that contains the whole target would have contained the event's address too, so
  // overlap here means the entry lies inside the target: its network address is in it.
  for (const IpPrefix& p : never_ban_) {
    if (target.contains(p.network)) return true;
  }
  for (const IpPrefix& p : trusted_proxies_) {
    if (target.contains(p.network)) return true;
  }
  return false;
}

void RuleEngine::proxy_failure(std::size_t proxy, const AuthEvent& e, std::uint32_t attempts,
                               UnixMicros now) {
  stats_.trusted_proxy_failures += attempts;
  UnixMicros& last = proxy_last_warning_[proxy];
  const UnixMicros interval = options_.proxy_warning_interval_seconds * kMicrosPerSecond;
  // Also quiet when time went backwards a little (out-of-order lines in `check -c`).
  if (last != std::numeric_limits<UnixMicros>::min() && now - last < interval && last - now < interval) {
    return;
  }
  last = now;
  if (options_.warn) {
    options_.warn("PROXY protocol probably misconfigured: failures attributed to proxy " +
                  e.ip.to_string());
  }
}

// Inlined into plan(), its only caller.
[[gnu::always_inline]] inline bool RuleEngine::CompiledMatch::matches_fields(const AuthEvent& e) const noexcept {
  for (const FieldTest& t : fields) {
    bool is_null = false;
    const std::string_view v = field_value(e, t.field, is_null);
    if (!t.condition->holds(v, is_null)) return false;
  }
  return ip == nullptr || in_any(*ip, e.ip);
}

std::size_t RuleEngine::plan(const AuthEvent& e, Step* steps, AttemptKeys& keys,
                             bool prefetch) const noexcept {
  const std::vector<Candidate>& rules = candidates(e);
  // One user hash for the rules and the deduplicator.
  // The deduplicator's seed: it ties attempts by this hash (see AttemptDeduplicator::keys).
  const std::uint64_t user_hash = e.has_user ? nonzero(hash_bytes(e.user, dedup_.seed())) : 0;
  keys = dedup_.keys(e, user_hash);
  if (prefetch) dedup_.prefetch(keys);
  if (rules.empty()) return 0;
  const std::uint32_t user32 = static_cast<std::uint32_t>(nonzero(user_hash >> 32));
  const unsigned source_bit = 1u << static_cast<unsigned>(e.source);
  std::uint64_t w[2];
  std::memcpy(w, e.ip.bytes.data(), 16);
  // Address fingerprints of the first few ip groups, computed once per event.
  constexpr unsigned kCachedGroups = 4;
  std::uint64_t group_fp[kCachedGroups];
  unsigned have = 0;
  std::size_t n = 0;
  for (const Candidate& c : rules) {
    bool matched = c.matches_kind && (c.sources & source_bit) != 0;
    if (matched && !c.simple) {
      const CompiledRule& r = rules_[c.rule];
      matched = r.match.matches(e) && !(r.has_exclude && r.exclude.matches(e));
    }
    if ((!matched && !c.reset) || (c.needs_user && !e.has_user)) continue;
    std::uint64_t fp = user_hash;
    if (c.key != KeyKind::user) {
      const unsigned g = c.ip_group;
      std::uint64_t ipfp;
      if (g < kCachedGroups && (have >> g & 1) != 0) {
        ipfp = group_fp[g];
      } else {
        const CompiledRule& r = rules_[c.rule];
        const std::uint64_t* m = e.ip.is_v4 ? r.mask4 : r.mask6;
        ipfp = hash_words(w[0] & m[0], w[1] & m[1], seed_, e.ip.is_v4 ? 4 : 6);
        if (g < kCachedGroups) {
          group_fp[g] = ipfp;
          have |= 1u << g;
        }
      }
      fp = c.key == KeyKind::ip ? ipfp : nonzero(mix64(ipfp ^ user_hash));
    }
    // The previous step's table: a rule sharing it, whose entry (same key) serves this one.
    const bool same_entry = n != 0 && steps[n - 1].table == c.table;
    Step& s = steps[n++];
    s.table = c.table;
    s.fp = fp;
    s.user32 = user32;
    s.where = 0;
    s.rule = c.rule;
    s.flags = static_cast<std::uint8_t>((matched ? kMatched : 0) | (c.reset ? kSuccessReset : 0) |
                                        (same_entry ? kSameEntry : 0));
    if (prefetch && !same_entry) c.table->prefetch_index(fp);
  }
  return n;
}

void RuleEngine::on_event(const AuthEvent& e, UnixMicros now, std::vector<BanDecision>& out) {
  const std::size_t n = plan(e, steps_.data(), attempt_keys_[0], false);
  process(e, now, attempt_keys_[0], steps_.data(), n, out);
}

void RuleEngine::on_events(std::span<const AuthEvent> events, std::span<const UnixMicros> nows,
                           std::vector<BanDecision>& out) {
  const std::size_t n_rules = rules_.size();
  const std::size_t total = std::min(events.size(), nows.size());
  // Group by group when that gives the same results: events of different groups touch
  // different state, and the batch cannot reach the key cap (at most one insert per rule per
  // event), so no eviction links the groups either. Mixed kinds would otherwise make nearly
  // every branch on the kind a misprediction.
  const bool grouped = groups_ > 1 && total > 1 &&
                       tracked_ + total * n_rules <= options_.max_tracked_keys;
  // order_[k]: the k-th event to evaluate (the batch's own order unless grouped).
  if (order_.size() < total) order_.resize(total);
  if (grouped) {
    // A counting sort of the indices by group, stable within a group.
    const std::uint8_t failure_group = kind_group_[static_cast<std::size_t>(EventKind::auth_failure)];
    if (group_of_.size() < total) group_of_.resize(total);
    std::size_t start[kKinds + 1] = {};
    for (std::size_t k = 0; k < total; ++k) {
      const AuthEvent& e = events[k];
      std::uint8_t g = kind_group_[static_cast<std::size_t>(e.kind) & (kKinds - 1)];
      // Any event from a trusted proxy may warn about it, like the failures of its group.
      if (!trusted_proxies_.empty() && in_any(trusted_proxies_, e.ip)) g = failure_group;
      group_of_[k] = g;
      ++start[g + 1];
    }
    for (std::size_t g = 1; g <= kKinds; ++g) start[g] += start[g - 1];
    for (std::size_t k = 0; k < total; ++k) order_[start[group_of_[k]]++] = static_cast<std::uint32_t>(k);
    decision_events_.clear();
    track_decisions_ = true;
  } else {
    std::iota(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(total), 0u);
  }
  const std::uint32_t* event_at = order_.data();
  // A rolling software pipeline, so each memory access has several events' work to arrive in:
  // event i + kPlanAhead is planned and its index slots (and dedup sets) requested, event
  // i + kEntryAhead's entries are requested (their index slots were requested kPlanAhead -
  // kEntryAhead events earlier), then event i is evaluated. Plans are pure functions of the
  // event; prefetches are only hints, and where an entry was found is checked against its
  // fingerprint before use (else looked up afresh), so the result is exactly on_event's.
  const auto stage_plan = [&](std::size_t k) {
    const std::size_t slot = k % kRing;
    step_count_[slot] = plan(events[event_at[k]], &steps_[slot * n_rules], attempt_keys_[slot], true);
  };
  const auto stage_entries = [&](std::size_t k) {
    const std::size_t slot = k % kRing;
    Step* s = &steps_[slot * n_rules];
    for (const Step* end = s + step_count_[slot]; s != end; ++s) {
      if ((s->flags & kSameEntry) == 0) s->where = s->table->prefetch_entry(s->fp);
    }
  };
  const std::size_t decided = out.size();
  for (std::size_t k = 0; k < std::min(total, kPlanAhead); ++k) stage_plan(k);
  for (std::size_t k = 0; k < std::min(total, kEntryAhead); ++k) stage_entries(k);
  for (std::size_t k = 0; k < total; ++k) {
    if (k + kPlanAhead < total) stage_plan(k + kPlanAhead);
    if (k + kEntryAhead < total) stage_entries(k + kEntryAhead);
    const std::size_t slot = k % kRing;
    const std::size_t i = event_at[k];
    current_event_ = static_cast<std::uint32_t>(i);
    process(events[i], nows[i], attempt_keys_[slot], &steps_[slot * n_rules], step_count_[slot], out);
  }
  track_decisions_ = false;
  // Decisions in event order, as on_event gives them (an event's own stay in rule order).
  if (grouped && !std::is_sorted(decision_events_.begin(), decision_events_.end())) {
    order_.resize(decision_events_.size());
    std::iota(order_.begin(), order_.end(), 0u);
    std::stable_sort(order_.begin(), order_.end(), [&](std::uint32_t a, std::uint32_t b) {
      return decision_events_[a] < decision_events_[b];
    });
    decision_scratch_.assign(out.begin() + static_cast<std::ptrdiff_t>(decided), out.end());
    for (std::size_t j = 0; j < order_.size(); ++j) out[decided + j] = decision_scratch_[order_[j]];
  }
}

void RuleEngine::process(const AuthEvent& e, UnixMicros now, const AttemptKeys& attempt_keys,
                         const Step* steps, std::size_t n_steps, std::vector<BanDecision>& out) {
  ++stats_.events;
  if (unspecified(e.ip)) return;
  std::uint32_t attempts = e.attempts;
  if (e.kind == EventKind::auth_failure) {
    attempts = dedup_.new_attempts(e, attempt_keys, now);
    if (attempts == 0) return;
  }
  for (const IpPrefix& p : never_ban_) {
    if (p.contains(e.ip)) {
      ++stats_.never_ban_events;
      return;
    }
  }
  for (std::size_t i = 0; i < trusted_proxies_.size(); ++i) {
    if (trusted_proxies_[i].contains(e.ip)) {
      if (e.kind != EventKind::auth_success) proxy_failure(i, e, attempts, now);
      return;
    }
  }
  const std::uint32_t now_s = to_seconds(now);
  const std::size_t decided = out.size();
  KeyEntry* k = nullptr;
  for (const Step* s = steps; s != steps + n_steps; ++s) {
    CompiledRule& r = rules_[s->rule];
    // The previous step's entry when this rule shares its table and key; else where the
    // pipeline found the entry, else (moved since, or on_event) a lookup.
    if ((s->flags & kSameEntry) == 0 || k == nullptr) {
      k = s->table->entry_at(s->where, s->fp);
      if (k == nullptr) k = s->table->find(s->fp);
    }
    // A successful login clears the key's count (not a ban in force).
    if (k != nullptr && (s->flags & kSuccessReset) != 0) reset_window(r, *k);
    if ((s->flags & kMatched) == 0) continue;
    if (k == nullptr) k = insert_key(tables_[r.table], s->fp, now_s);
    if (now_s > k->last_seen) k->last_seen = now_s;
    if (banned_until(r, *k) > now_s) continue;  // already banned: attempts in flight are not re-counted
    if (count(r, state(r, *k), attempts, s->user32, now_s)) decide(r, s->rule, e, now, *k, out);
  }
  // An event's decisions in rule order (a table shared by rules further apart is evaluated
  // member after member).
  if (steps_out_of_rule_order_ && out.size() - decided > 1) {
    std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(decided), out.end(),
                     [](const BanDecision& a, const BanDecision& b) { return a.rule_index < b.rule_index; });
  }
}

void RuleEngine::sweep(UnixMicros now, std::size_t budget) {
  const std::uint32_t now_s = to_seconds(now);
  for (auto& t : tables_) {
    const auto is_idle = [&](const KeyEntry& k) { return idle(t, k, now_s); };
    for (std::size_t i = 0; i < budget && t.keys->size() > 0; ++i) {
      bool was_idle = false;
      KeyEntry* v = t.keys->pick_victim(1, is_idle, was_idle);
      if (v != nullptr && was_idle) release(t, v, true);
    }
  }
}

RuleEngineStats RuleEngine::stats() const {
  RuleEngineStats s = stats_;
  s.duplicate_attempts = dedup_.stats().duplicate_attempts;
  s.tracked_keys = tracked_;
  s.state_bytes = 0;
  for (const auto& t : tables_) s.state_bytes += t.keys->memory_bytes();
  return s;
}

}  // namespace authwall::rules
