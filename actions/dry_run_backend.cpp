#include "actions/dry_run_backend.h"

#include <algorithm>
#include <cerrno>

namespace authwall::actions {

PrepareResult DryRunBanBackend::prepare() {
  PrepareResult r;
  r.ok = true;
  return r;
}

void DryRunBanBackend::expire(UnixMicros now) {
  if (now < next_expiry_) return;
  next_expiry_ = INT64_MAX;
  for (auto it = elements_.begin(); it != elements_.end();) {
    // The kernel drops an element once its expiration reaches zero.
    if (it->second.expires <= now) {
      it = elements_.erase(it);
    } else {
      if (it->second.expires < next_expiry_) next_expiry_ = it->second.expires;
      ++it;
    }
  }
}

DryRunBanBackend::Map::iterator DryRunBanBackend::find_overlap(const IpAddress& first,
                                                               const IpAddress& last) {
  // Elements are disjoint, so only the one starting last at or before `last` can intersect.
  auto it = elements_.upper_bound(Key{!last.is_v4, last.bytes});
  if (it == elements_.begin()) return elements_.end();
  --it;
  if (it->first.is_v6 == first.is_v4) return elements_.end();
  if (first.bytes <= it->second.last.bytes) return it;
  return elements_.end();
}

int DryRunBanBackend::apply_op(const Op& op, UnixMicros now) {
  const auto it = find_overlap(op.first, op.last);
  const bool same = it != elements_.end() && it->second.first == op.first &&
                    it->second.last == op.last;
  // Both kinds first add the range (NftBanBackend deletes by "add, delete"), which a different
  // overlapping element refuses, as the kernel's interval sets do.
  if (it != elements_.end() && !same) return EEXIST;
  const Key key{!op.first.is_v4, op.first.bytes};
  if (same) {
    undo_.push_back(Undo{key, true, it->second});
  } else {
    undo_.push_back(Undo{key, false, Entry{}});
  }
  if (!op.add) {
    if (same) elements_.erase(it);
    return 0;
  }
  const Entry entry{op.first, op.last, std::uint64_t{op.timeout_seconds} * 1000,
                    now + UnixMicros{op.timeout_seconds} * kMicrosPerSecond};
  elements_[key] = entry;  // a re-ban replaces the entry: the timeout starts again
  if (entry.expires < next_expiry_) next_expiry_ = entry.expires;
  return 0;
}

void DryRunBanBackend::rollback() {
  for (auto u = undo_.rbegin(); u != undo_.rend(); ++u) {
    if (u->existed) {
      elements_[u->key] = u->previous;
    } else {
      elements_.erase(u->key);
    }
  }
  undo_.clear();
  next_expiry_ = INT64_MIN;  // recomputed by the next expire()
}

void DryRunBanBackend::commit(const std::vector<std::size_t>& positions, UnixMicros now,
                              BatchResult& result) {
  undo_.clear();
  std::vector<int> errors(positions.size(), 0);
  bool failed = false;
  for (std::size_t i = 0; i < positions.size(); ++i) {
    errors[i] = apply_op(ops_[positions[i]], now);
    failed = failed || errors[i] != 0;
  }
  ++result.batches_sent;
  if (!failed) {
    undo_.clear();
    ++stats_.batches_committed;
    stats_.elements_applied += positions.size();
    result.applied += positions.size();
    return;
  }
  rollback();
  ++stats_.batches_failed;
  if (positions.size() == 1) {
    result.failures.push_back(ElementFailure{ops_[positions[0]].origin, errors[0]});
    ++stats_.element_errors;
    return;
  }
  std::vector<std::size_t> clean, suspects;
  for (std::size_t i = 0; i < positions.size(); ++i) {
    (errors[i] != 0 ? suspects : clean).push_back(positions[i]);
  }
  if (!clean.empty()) commit(clean, now, result);
  for (std::size_t p : suspects) commit({p}, now, result);
}

BatchResult DryRunBanBackend::run(UnixMicros now, BatchResult result) {
  expire(now);
  if (!ops_.empty()) {
    std::vector<std::size_t> all(ops_.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    commit(all, now, result);
  }
  std::sort(result.failures.begin(), result.failures.end(),
            [](const ElementFailure& a, const ElementFailure& b) { return a.index < b.index; });
  return result;
}

BatchResult DryRunBanBackend::apply(std::span<const BanChange> changes, UnixMicros now) {
  BatchResult result;
  ops_.clear();
  last_change_per_target(changes, last_);
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const BanChange& c = changes[i];
    if (last_[i] != i) continue;
    if (c.kind == BanChange::Kind::kAdd && c.timeout_seconds == 0) {
      result.failures.push_back(ElementFailure{i, EINVAL});  // as NftBanBackend: never forever
      ++stats_.element_errors;
      continue;
    }
    Op op;
    op.add = c.kind == BanChange::Kind::kAdd;
    prefix_range(c.target, op.first, op.last);
    op.timeout_seconds = c.timeout_seconds;
    op.origin = i;
    ops_.push_back(op);
  }
  result = run(now, std::move(result));
  settle_superseded(last_, result, stats_);
  return result;
}

BatchResult DryRunBanBackend::remove(std::span<const SetElement> elements, UnixMicros now) {
  ops_.clear();
  for (std::size_t i = 0; i < elements.size(); ++i) {
    Op op;
    op.add = false;
    op.first = elements[i].first;
    op.last = elements[i].last;
    op.origin = i;
    ops_.push_back(op);
  }
  return run(now, BatchResult{});
}

bool DryRunBanBackend::list(std::vector<SetElement>& out, UnixMicros now, std::string&) {
  expire(now);
  out.clear();
  out.reserve(elements_.size());
  for (const auto& [key, e] : elements_) {
    SetElement s;
    s.first = e.first;
    s.last = e.last;
    s.is_prefix = range_to_prefix(e.first, e.last, s.prefix);
    s.timeout_ms = e.timeout_ms;
    s.expires_in_ms = static_cast<std::uint64_t>((e.expires - now + 999) / 1000);
    out.push_back(s);
  }
  return true;
}

bool DryRunBanBackend::flush(std::string&) {
  elements_.clear();
  next_expiry_ = INT64_MAX;
  ++stats_.batches_committed;
  return true;
}

std::size_t DryRunBanBackend::size(UnixMicros now) {
  expire(now);
  return elements_.size();
}

}  // namespace authwall::actions
