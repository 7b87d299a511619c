#include "app/ban_book.h"

#include <algorithm>
#include <cstdio>

#include "common/duration.h"

namespace authwall::app {


void BanBook::put(const ActiveBan& ban) {
  std::lock_guard lock(mu_);
  const Key k = key(ban.target);
  const auto it = bans_.find(k);
  if (it == bans_.end()) {
    bans_.emplace(k, ban);
    ++lengths_[{k.v6, k.length}];
  } else {
    it->second = ban;
  }
  if (ban.in_firewall) {
    held_.erase(k);
  } else {
    held_.insert(k);
  }
}

void BanBook::forget_locked(std::map<Key, ActiveBan>::iterator it) {
  const auto l = lengths_.find({it->first.v6, it->first.length});
  if (l != lengths_.end() && --l->second == 0) lengths_.erase(l);
  held_.erase(it->first);
  bans_.erase(it);
}

void BanBook::set_in_firewall(const IpPrefix& target, bool in_firewall) {
  std::lock_guard lock(mu_);
  const auto it = bans_.find(key(target));
  if (it == bans_.end() || it->second.in_firewall == in_firewall) return;
  it->second.in_firewall = in_firewall;
  if (in_firewall) {
    held_.erase(it->first);
  } else {
    held_.insert(it->first);
  }
}

bool BanBook::any_held() const {
  std::lock_guard lock(mu_);
  return !held_.empty();
}

std::vector<ActiveBan> BanBook::held(UnixMicros now) const {
  std::lock_guard lock(mu_);
  std::vector<ActiveBan> out;
  for (const Key& k : held_) {
    const ActiveBan& b = bans_.at(k);
    if (b.expires > now) out.push_back(b);
  }
  return out;
}

std::vector<ActiveBan> BanBook::wider(const IpPrefix& target, UnixMicros now) const {
  std::lock_guard lock(mu_);
  std::vector<ActiveBan> out;
  for_each_cover_locked(target, now, true, [&](const ActiveBan& b) { out.push_back(b); });
  return out;
}

void BanBook::erase(const IpPrefix& target) {
  std::lock_guard lock(mu_);
  const auto it = bans_.find(key(target));
  if (it != bans_.end()) forget_locked(it);
}

std::optional<ActiveBan> BanBook::find(const IpPrefix& target, UnixMicros now) const {
  std::lock_guard lock(mu_);
  const auto it = bans_.find(key(target));
  if (it == bans_.end() || it->second.expires <= now) return std::nullopt;
  return it->second;
}

template <class F>
void BanBook::for_each_cover_locked(const IpPrefix& target, UnixMicros now, bool strictly_wider,
                                    F&& f) const {
  // One lookup per prefix length in use.
  const bool v6 = !target.network.is_v4;
  for (const auto& [family_length, n] : lengths_) {
    const std::uint8_t length = family_length.second;
    if (family_length.first != v6 || length > target.length || (strictly_wider && length == target.length)) {
      continue;
    }
    const auto it = bans_.find(key(IpPrefix::of(target.network, length)));
    if (it != bans_.end() && it->second.expires > now) f(it->second);
  }
}

std::optional<ActiveBan> BanBook::covering(const IpPrefix& target, UnixMicros now) const {
  std::lock_guard lock(mu_);
  std::optional<ActiveBan> best;
  for_each_cover_locked(target, now, false, [&](const ActiveBan& b) {
    if (!best || b.expires > best->expires) best = b;
  });
  return best;
}

std::vector<ActiveBan> BanBook::inside(const IpPrefix& target, UnixMicros now) const {
  std::lock_guard lock(mu_);
  std::vector<ActiveBan> out;
  const Key first = key(target);
  for (auto it = bans_.upper_bound(first); it != bans_.end(); ++it) {
    const ActiveBan& b = it->second;
    if (it->first.v6 != first.v6 || !target.contains(b.target.network)) break;
    if (b.expires > now && b.target.length > target.length) out.push_back(b);
  }
  return out;
}

std::vector<ActiveBan> BanBook::list(UnixMicros now) const {
  std::vector<ActiveBan> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [k, b] : bans_) {
      if (b.expires > now) out.push_back(b);
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const ActiveBan& a, const ActiveBan& b) { return a.expires < b.expires; });
  return out;
}

std::size_t BanBook::count(UnixMicros now) const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [k, b] : bans_) n += b.expires > now ? 1 : 0;
  return n;
}

void BanBook::prune(UnixMicros now) {
  std::lock_guard lock(mu_);
  for (auto it = bans_.begin(); it != bans_.end();) {
    if (it->second.expires <= now) {
      auto next = std::next(it);
      forget_locked(it);
      it = next;
    } else {
      ++it;
    }
  }
}

namespace {

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::int64_t remaining_seconds(const ActiveBan& b, UnixMicros now) {
  return std::max<std::int64_t>(0, (b.expires - now + kMicrosPerSecond - 1) / kMicrosPerSecond);
}

}  // namespace

std::string format_bans_json(const std::vector<ActiveBan>& bans, UnixMicros now) {
  std::string out = "[";
  bool first = true;
  for (const auto& b : bans) {
    out += first ? "\n  {" : ",\n  {";
    first = false;
    out += "\"target\": ";
    append_json_string(out, b.target.to_string());
    out += ", \"rule\": ";
    append_json_string(out, b.rule);
    out += ", \"expires\": ";
    // Whole seconds: what an operator reads, and what the kernel's timeout resolution gives.
    append_json_string(out, format_rfc3339(b.expires - b.expires % kMicrosPerSecond));
    out += ", \"created\": ";
    append_json_string(out, format_rfc3339(b.created - b.created % kMicrosPerSecond));
    out += ", \"remaining_seconds\": " + std::to_string(remaining_seconds(b, now));
    out += ", \"offence\": " + std::to_string(b.offence);
    out += '}';
  }
  out += bans.empty() ? "]\n" : "\n]\n";
  return out;
}

std::string format_bans_table(const std::vector<ActiveBan>& bans, UnixMicros now) {
  if (bans.empty()) return "no active bans\n";
  std::size_t target_width = 6;
  std::size_t rule_width = 4;
  for (const auto& b : bans) {
    target_width = std::max(target_width, b.target.to_string().size());
    rule_width = std::max(rule_width, b.rule.size());
  }
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-*s  %-*s  %-20s  %s\n", static_cast<int>(target_width), "TARGET",
                static_cast<int>(rule_width), "RULE", "EXPIRES", "REMAINING");
  out += line;
  for (const auto& b : bans) {
    std::snprintf(line, sizeof line, "%-*s  %-*s  %-20s  %s\n", static_cast<int>(target_width),
                  b.target.to_string().c_str(), static_cast<int>(rule_width), b.rule.c_str(),
                  format_rfc3339(b.expires - b.expires % kMicrosPerSecond).c_str(),
                  format_duration(std::max<std::int64_t>(1, remaining_seconds(b, now))).c_str());
    out += line;
  }
  return out;
}
}  // namespace authwall::app
