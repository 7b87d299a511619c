#include "rules/key_table.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <new>

namespace authwall::rules {

namespace {
constexpr std::size_t kHugePage = 2u << 20;

// Entries never straddle a cache line more than they must: 32 bytes (two per line) or whole
// lines. A lookup then reads as few lines as the entry's size allows (an unaligned 48-byte
// entry spans two lines half the time), for at most a third more memory on such entries.
std::size_t line_stride(std::size_t bytes) {
  if (bytes <= 32) return 32;
  return (bytes + 63) / 64 * 64;
}
}  // namespace

TableMemory::TableMemory(std::size_t bytes) : bytes_(bytes) {
  if (bytes >= kHugePage) {
    // Anonymous mappings are zero-filled and only become resident when touched. The block is
    // aligned to a huge page (mapped one huge page larger, the ends trimmed): the kernel backs
    // only aligned 2 MiB extents with huge pages, so an unaligned 2 MiB index would get none.
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = ::mmap(nullptr, rounded + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t aligned = (start + kHugePage - 1) & ~(std::uintptr_t{kHugePage} - 1);
    if (aligned > start) ::munmap(p, aligned - start);
    const std::size_t tail = start + rounded + kHugePage - (aligned + rounded);
    if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + rounded), tail);
    p = reinterpret_cast<void*>(aligned);
    ::madvise(p, rounded, MADV_HUGEPAGE);  // a hint; fine if THP is off
    data_ = static_cast<unsigned char*>(p);
    bytes_ = rounded;
    mapped_ = true;
  } else {
    // Line-aligned, so line-sized entries (key_table.cpp line_stride) start on a line.
    data_ = static_cast<unsigned char*>(::operator new(bytes, std::align_val_t{64}));
    std::memset(data_, 0, bytes);
  }
}

TableMemory::~TableMemory() {
  if (data_ == nullptr) return;
  if (mapped_) {
    ::munmap(data_, bytes_);
  } else {
    ::operator delete(data_, std::align_val_t{64});
  }
}

TableMemory& TableMemory::operator=(TableMemory&& o) noexcept {
  if (this != &o) {
    this->~TableMemory();
    data_ = o.data_;
    bytes_ = o.bytes_;
    mapped_ = o.mapped_;
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

KeyTable::KeyTable(std::size_t slot_bytes, std::size_t max_entries, std::size_t initial_entries)
    : stride_(line_stride(sizeof(KeyEntry) + slot_bytes)),
      max_entries_(std::clamp<std::size_t>(max_entries, 1, kMaxEntries)) {
  const std::size_t lines = std::clamp<std::size_t>(stride_ / 64, 1, 4);
  for (std::size_t i = 0; i < 3; ++i) line_offset_[i] = 64 * std::min(i + 1, lines - 1);
  slot_bits_ = static_cast<unsigned>(std::bit_width(max_entries_));
  slot_mask_ = (std::uint32_t{1} << slot_bits_) - 1;
  tag_mask_ = static_cast<std::uint32_t>((std::uint64_t{1} << (32 - slot_bits_)) - 1);
  capacity_ = std::min(std::bit_ceil(std::max<std::size_t>(initial_entries, 16)), max_entries_);
  slab_mem_ = TableMemory(capacity_ * stride_);
  slab_ = slab_mem_.data();
  rehash(std::bit_ceil(capacity_ * 2));
}

void KeyTable::clear() noexcept {
  std::memset(slab_, 0, capacity_ * stride_);
  std::memset(index_, 0, index_size_ * sizeof(std::uint32_t));
  used_ = size_ = hand_ = 0;
  free_head_ = 0;
}

void KeyTable::grow_slab() {
  const std::size_t cap = std::min(capacity_ * 2, max_entries_);
  TableMemory slab(cap * stride_);
  std::memcpy(slab.data(), slab_, used_ * stride_);
  slab_mem_ = std::move(slab);
  slab_ = slab_mem_.data();
  capacity_ = cap;
}

void KeyTable::rehash(std::size_t index_size) {
  index_mem_ = TableMemory(index_size * sizeof(std::uint32_t));
  index_ = reinterpret_cast<std::uint32_t*>(index_mem_.data());
  index_size_ = index_size;
  index_mask_ = index_size - 1;
  for (std::size_t s = 0; s < used_; ++s) {
    const KeyEntry* e = entry(static_cast<std::uint32_t>(s));
    if (e->fp != 0) index_insert(e->fp, static_cast<std::uint32_t>(s));
  }
}

void KeyTable::index_insert(std::uint64_t fp, std::uint32_t slot) noexcept {
  std::size_t i = home_of(fp);
  while (index_[i] != 0) i = (i + 1) & index_mask_;
  index_[i] = (tag_of(fp) << slot_bits_) | (slot + 1);
}

KeyEntry* KeyTable::insert(std::uint64_t fp, std::uint32_t now) {
  std::uint32_t slot;
  if (free_head_ != 0) {
    slot = free_head_ - 1;
    free_head_ = entry(slot)->last_seen;  // free entries chain through last_seen
  } else {
    if (used_ == capacity_) grow_slab();
    slot = static_cast<std::uint32_t>(used_++);
  }
  ++size_;
  if (size_ * 2 > index_size_) rehash(index_size_ * 2);
  KeyEntry* e = entry(slot);
  std::memset(static_cast<void*>(e), 0, stride_);
  e->fp = fp;
  e->last_seen = now;
  index_insert(fp, slot);
  return e;
}

void KeyTable::erase(KeyEntry* e) noexcept {
  const std::uint32_t slot = slot_of(e);
  // Find the index position, then close the gap by shifting later members of the probe run
  // back (no tombstones, so lookups never slow down with churn). A member's home position
  // comes from its entry's fingerprint (the index slot holds only a tag).
  std::size_t i = home_of(e->fp);
  while ((index_[i] & slot_mask_) != slot + 1) i = (i + 1) & index_mask_;
  std::size_t j = i;
  for (;;) {
    j = (j + 1) & index_mask_;
    const std::uint32_t v = index_[j];
    if (v == 0) break;
    const std::size_t home = home_of(entry((v & slot_mask_) - 1)->fp);
    // Move v into the hole at i unless its home lies cyclically in (i, j].
    const bool home_in_between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!home_in_between) {
      index_[i] = v;
      i = j;
    }
  }
  index_[i] = 0;
  std::memset(static_cast<void*>(e), 0, stride_);
  e->last_seen = free_head_;
  free_head_ = slot + 1;
  --size_;
}

}  // namespace authwall::rules
