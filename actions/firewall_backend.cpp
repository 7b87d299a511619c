#include "actions/firewall_backend.h"

#include <algorithm>
#include <numeric>
#include <tuple>

namespace authwall::actions {

void prefix_range(const IpPrefix& prefix, IpAddress& first, IpAddress& last) noexcept {
  first = prefix.network;
  last = prefix.network;
  const int width = prefix.network.bit_length();
  for (int bit = prefix.length; bit < width; ++bit) {
    last.bytes[static_cast<std::size_t>(bit / 8)] |= static_cast<std::uint8_t>(0x80u >> (bit % 8));
  }
}

bool range_to_prefix(const IpAddress& first, const IpAddress& last, IpPrefix& out) noexcept {
  if (first.is_v4 != last.is_v4) return false;
  const int width = first.bit_length();
  // The prefix length is the number of leading bits first and last share; below it, first
  // must be all zeros and last all ones.
  int length = 0;
  while (length < width) {
    const auto byte = static_cast<std::size_t>(length / 8);
    const auto mask = static_cast<std::uint8_t>(0x80u >> (length % 8));
    if ((first.bytes[byte] & mask) != (last.bytes[byte] & mask)) break;
    ++length;
  }
  for (int bit = length; bit < width; ++bit) {
    const auto byte = static_cast<std::size_t>(bit / 8);
    const auto mask = static_cast<std::uint8_t>(0x80u >> (bit % 8));
    if ((first.bytes[byte] & mask) != 0 || (last.bytes[byte] & mask) == 0) return false;
  }
  out = IpPrefix::of(first, length);
  return true;
}

void last_change_per_target(std::span<const BanChange> changes, std::vector<std::size_t>& last) {
  last.resize(changes.size());
  std::vector<std::size_t> order(changes.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  const auto key = [&](std::size_t i) {
    const IpPrefix& t = changes[i].target;
    return std::tie(t.network.is_v4, t.network.bytes, t.length);
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && key(order[j + 1]) == key(order[i])) ++j;
    for (std::size_t k = i; k <= j; ++k) last[order[k]] = order[j];  // stable: order[j] is last
    i = j + 1;
  }
}

void settle_superseded(const std::vector<std::size_t>& last, BatchResult& result,
                       BackendStats& stats) {
  const auto cmp = [](const ElementFailure& f, std::size_t i) { return f.index < i; };
  std::vector<ElementFailure> extra;
  for (std::size_t i = 0; i < last.size(); ++i) {
    if (last[i] == i) continue;
    const auto it =
        std::lower_bound(result.failures.begin(), result.failures.end(), last[i], cmp);
    if (it != result.failures.end() && it->index == last[i]) {
      extra.push_back(ElementFailure{i, it->error});
      ++stats.element_errors;
    } else {
      ++result.applied;
      ++stats.elements_applied;
    }
  }
  if (extra.empty()) return;
  result.failures.insert(result.failures.end(), extra.begin(), extra.end());
  std::sort(result.failures.begin(), result.failures.end(),
            [](const ElementFailure& a, const ElementFailure& b) { return a.index < b.index; });
}

}  // namespace authwall::actions
