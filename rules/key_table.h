#pragma once
// A bounded hash table of fixed-size per-key window state, one per rule or per group of rules
// sharing key, prefixes and match (rules/rule_engine.cpp).
//
// Entries live in a slab with a per-table stride (header + the window slots of its rules) and are
// found through an open-addressing index (linear probing, load <= 1/2, backward-shift
// deletion). Keys are stored as a seeded 64-bit fingerprint only: the table never needs the key
// back (a ban's target comes from the event that crossed the threshold), and with a per-process
// random seed two keys share a fingerprint with probability ~n^2/2^65 (3e-8 at 1M keys).
//
// Both arrays grow by doubling up to the engine's key cap, so steady state allocates nothing.
// Victims for eviction are chosen like Redis's approximate LRU: a clock hand samples a few
// consecutive slab entries and takes the least recently seen one, preferring entries whose
// window has expired. No per-access list maintenance, so a hit touches one index and one slab
// line. Not thread-safe.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "common/prefetch.h"

namespace authwall::rules {

// Zeroed memory for the tables. Large blocks are mapped separately and marked for transparent
// huge pages: lookups land on random addresses over tens of megabytes, and with 4 KiB pages
// nearly every one would also miss the TLB.
class TableMemory {
 public:
  TableMemory() = default;
  explicit TableMemory(std::size_t bytes);
  ~TableMemory();
  TableMemory(TableMemory&& o) noexcept : data_(o.data_), bytes_(o.bytes_), mapped_(o.mapped_) {
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  TableMemory& operator=(TableMemory&& o) noexcept;
  unsigned char* data() const noexcept { return data_; }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  unsigned char* data_ = nullptr;
  std::size_t bytes_ = 0;
  bool mapped_ = false;
};

struct KeyEntry {
  std::uint64_t fp = 0;            // fingerprint; 0 = free slab slot
  std::uint32_t last_seen = 0;     // seconds (Unix, truncated) of the last event for this key
  std::uint32_t banned_until = 0;  // seconds; events before it are not counted (already banned)
  // Followed by the rule's window state (stride - sizeof(KeyEntry) bytes; its layout is the
  // window's, rules/rule_engine.cpp). In a table shared by rules, banned_until is the first
  // rule's and each further rule's ban end and window follow (RuleEngine::CompiledRule).
  unsigned char* slots() noexcept { return reinterpret_cast<unsigned char*>(this + 1); }
};
static_assert(sizeof(KeyEntry) == 16);

class KeyTable {
 public:
  // Index slots hold a 28-bit slab position at most (and a tag of at least 4 bits).
  static constexpr std::size_t kMaxEntries = (std::size_t{1} << 28) - 2;
  // `slot_bytes`: window state per key; `max_entries`: upper bound on live entries.
  KeyTable(std::size_t slot_bytes, std::size_t max_entries, std::size_t initial_entries = 1024);

  KeyEntry* find(std::uint64_t fp) noexcept {
    const std::uint32_t tag = tag_of(fp);
    for (std::size_t i = home_of(fp);; i = (i + 1) & index_mask_) {
      const std::uint32_t v = index_[i];
      if (v == 0) return nullptr;
      if ((v >> slot_bits_) == tag) {
        KeyEntry* e = entry((v & slot_mask_) - 1);
        if (e->fp == fp) return e;
      }
    }
  }
  // Cache hints for a lookup of `fp` soon: the index slot, then (once it has arrived) the
  // entry it points to. Never change anything.
  void prefetch_index(std::uint64_t fp) const noexcept { prefetch_line(&index_[home_of(fp)]); }
  // Returns where the entry probably is (see entry_at), 0 when the key is not in the table.
  std::uint32_t prefetch_entry(std::uint64_t fp) const noexcept {
    // The key's slot, not just its home: with linear probing at load up to 1/2 a fifth to a
    // third of the keys sit after their home, and prefetching the home's entry instead would
    // leave their own entry a demand miss. The run is in the index line already requested.
    const std::uint32_t tag = tag_of(fp);
    std::uint32_t v;
    for (std::size_t i = home_of(fp);; i = (i + 1) & index_mask_) {
      v = index_[i];
      if (v == 0) return 0;  // not in the table (an insert will come)
      if ((v >> slot_bits_) == tag) break;
    }
    const std::uint32_t slot = v & slot_mask_;
    const unsigned char* e = slab_ + static_cast<std::size_t>(slot - 1) * stride_;
    // Every line of the entry (windows read all their slots), up to four; entries are
    // line-aligned (or two to a line), see line_stride in key_table.cpp. Always four hints,
    // the last line repeated for shorter entries: no branch on the table's entry size, which
    // changes from one lookup to the next.
    prefetch_line(e);
    prefetch_line(e + line_offset_[0]);
    prefetch_line(e + line_offset_[1]);
    prefetch_line(e + line_offset_[2]);
    return slot;
  }
  // The entry for `fp` if it is at `where` (a prefetch_entry result, however old: slab
  // positions outlive growth, and an entry moved or erased since is detected), else null.
  KeyEntry* entry_at(std::uint32_t where, std::uint64_t fp) noexcept {
    if (where == 0) return nullptr;
    KeyEntry* e = entry(where - 1);
    return e->fp == fp ? e : nullptr;
  }

  // Inserts a zeroed entry for `fp` (not present). The caller ensures size() < max_entries().
  // May grow the arrays (allocation happens only while the table grows).
  KeyEntry* insert(std::uint64_t fp, std::uint32_t now);
  void erase(KeyEntry* e) noexcept;

  // Samples `sample` entries at the clock hand and returns the least recently seen one,
  // preferring one for which `idle(entry)` is true; nullptr when empty. The hand advances.
  template <typename IdlePredicate>
  KeyEntry* pick_victim(std::size_t sample, IdlePredicate idle, bool& was_idle) noexcept {
    was_idle = false;
    if (size_ == 0) return nullptr;
    KeyEntry* best = nullptr;
    std::size_t seen = 0;
    // Bounded: at most every used slot once (free slots are skipped but counted).
    for (std::size_t steps = 0; steps < used_ && seen < sample; ++steps) {
      if (hand_ >= used_) hand_ = 0;
      KeyEntry* e = entry(static_cast<std::uint32_t>(hand_++));
      if (e->fp == 0) continue;
      ++seen;
      if (idle(*e)) {
        was_idle = true;
        return e;
      }
      if (best == nullptr || e->last_seen < best->last_seen) best = e;
    }
    return best;
  }

  std::size_t size() const noexcept { return size_; }
  // True when the next insert would have to grow the slab.
  bool full() const noexcept { return free_head_ == 0 && used_ == capacity_; }
  std::size_t max_entries() const noexcept { return max_entries_; }
  std::size_t stride() const noexcept { return stride_; }
  // Bytes held by the slab and index (what a tracked key costs, with growth slack).
  std::size_t memory_bytes() const noexcept {
    return capacity_ * stride_ + index_size_ * sizeof(std::uint32_t);
  }
  void clear() noexcept;

 private:
  KeyEntry* entry(std::uint32_t slot) noexcept {
    return reinterpret_cast<KeyEntry*>(slab_ + static_cast<std::size_t>(slot) * stride_);
  }
  // Index slots are 32 bits: (tag << slot_bits_) | (slab slot + 1), 0 = empty. The home
  // position comes from the fingerprint's high half, the tag from its low bits, so keys that
  // probe the same run still differ in their tags; a tag match is confirmed against the entry.
  std::size_t home_of(std::uint64_t fp) const noexcept {
    return static_cast<std::uint32_t>(fp >> 32) & index_mask_;
  }
  std::uint32_t tag_of(std::uint64_t fp) const noexcept {
    return static_cast<std::uint32_t>(fp) & tag_mask_;
  }
  std::uint32_t slot_of(const KeyEntry* e) const noexcept {
    return static_cast<std::uint32_t>((reinterpret_cast<const unsigned char*>(e) - slab_) /
                                      stride_);
  }
  void grow_slab();
  void rehash(std::size_t index_size);
  void index_insert(std::uint64_t fp, std::uint32_t slot) noexcept;

  std::size_t stride_;
  std::size_t line_offset_[3];  // of an entry's 2nd, 3rd and 4th line (its last if fewer)
  std::size_t max_entries_;
  unsigned char* slab() const noexcept { return slab_mem_.data(); }
  TableMemory slab_mem_;
  unsigned char* slab_ = nullptr;
  std::size_t capacity_ = 0;  // slab entries allocated
  std::size_t used_ = 0;      // slab entries ever handed out (high-water mark)
  std::size_t size_ = 0;      // live entries
  std::uint32_t free_head_ = 0;  // 1-based slot of the first free slab entry; 0 = none
  TableMemory index_mem_;
  std::uint32_t* index_ = nullptr;
  unsigned slot_bits_ = 0;  // enough for max_entries_ + 1
  std::uint32_t slot_mask_ = 0;
  std::uint32_t tag_mask_ = 0;
  std::size_t index_size_ = 0;
  std::size_t index_mask_ = 0;
  std::size_t hand_ = 0;
};

}  // namespace authwall::rules
