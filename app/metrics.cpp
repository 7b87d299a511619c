#include "app/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace authwall::app {
namespace {

bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    out += buf;
  } else {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    out += buf;
  }
}

void append_labels(std::string& out, const MetricLabels& labels, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    out += escape_label_value(v);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

// HELP text escapes backslash and newline only.
std::string escape_help(std::string_view help) {
  std::string s;
  for (char c : help) {
    if (c == '\\') {
      s += "\\\\";
    } else if (c == '\n') {
      s += "\\n";
    } else {
      s += c;
    }
  }
  return s;
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string s;
  s.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      s += "\\\\";
    } else if (c == '"') {
      s += "\\\"";
    } else if (c == '\n') {
      s += "\\n";
    } else {
      s += c;
    }
  }
  return s;
}

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double value) noexcept {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double old = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(old, old + value, std::memory_order_relaxed)) {
  }
}

std::uint64_t Histogram::cumulative(std::size_t i) const noexcept {
  std::uint64_t total = 0;
  for (std::size_t b = 0; b <= i && b <= bounds_.size(); ++b) {
    total += buckets_[b].load(std::memory_order_relaxed);
  }
  return total;
}

MetricsRegistry::Series& MetricsRegistry::series_locked(std::string_view name,
                                                        std::string_view help, Type type,
                                                        MetricLabels&& labels) {
  if (!valid_name(name)) throw std::invalid_argument("invalid metric name: " + std::string(name));
  for (const auto& [k, v] : labels) {
    if (!valid_name(k) || k.find(':') != std::string::npos || k.rfind("__", 0) == 0 || k == "le") {
      throw std::invalid_argument("invalid label name: " + k);
    }
  }
  std::sort(labels.begin(), labels.end());
  Family* family = nullptr;
  for (auto& f : families_) {
    if (f->name == name) {
      family = f.get();
      break;
    }
  }
  if (family == nullptr) {
    families_.push_back(std::make_unique<Family>(Family{std::string(name), std::string(help), type, {}}));
    family = families_.back().get();
  } else if (family->type != type) {
    throw std::invalid_argument("metric registered with two types: " + std::string(name));
  }
  for (auto& s : family->series) {
    if (s->labels == labels) return *s;
  }
  family->series.push_back(std::make_unique<Series>());
  family->series.back()->labels = std::move(labels);
  return *family->series.back();
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                  MetricLabels labels) {
  std::lock_guard lock(mu_);
  Series& s = series_locked(name, help, Type::counter, std::move(labels));
  if (!s.counter && !s.read) s.counter = std::make_unique<Counter>();
  if (!s.counter) throw std::invalid_argument("metric series is computed: " + std::string(name));
  return *s.counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, MetricLabels labels) {
  std::lock_guard lock(mu_);
  Series& s = series_locked(name, help, Type::gauge, std::move(labels));
  if (!s.gauge && !s.read) s.gauge = std::make_unique<Gauge>();
  if (!s.gauge) throw std::invalid_argument("metric series is computed: " + std::string(name));
  return *s.gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      std::vector<double> upper_bounds, MetricLabels labels) {
  std::lock_guard lock(mu_);
  Series& s = series_locked(name, help, Type::histogram, std::move(labels));
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(std::move(upper_bounds));
  return *s.histogram;
}

void MetricsRegistry::counter_fn(std::string_view name, std::string_view help, MetricLabels labels,
                                 std::function<double()> read) {
  std::lock_guard lock(mu_);
  Series& s = series_locked(name, help, Type::counter, std::move(labels));
  if (s.counter) throw std::invalid_argument("metric series is not computed: " + std::string(name));
  s.read = std::move(read);
}

void MetricsRegistry::gauge_fn(std::string_view name, std::string_view help, MetricLabels labels,
                               std::function<double()> read) {
  std::lock_guard lock(mu_);
  Series& s = series_locked(name, help, Type::gauge, std::move(labels));
  if (s.gauge) throw std::invalid_argument("metric series is not computed: " + std::string(name));
  s.read = std::move(read);
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(8192);
  for (const auto& f : families_) {
    // A counter family's samples carry the _total suffix in its name already; the TYPE line
    // names the family as registered (the 0.0.4 format has no separate family name).
    out += "# HELP ";
    out += f->name;
    out += ' ';
    out += escape_help(f->help);
    out += "\n# TYPE ";
    out += f->name;
    out += f->type == Type::counter ? " counter\n" : f->type == Type::gauge ? " gauge\n" : " histogram\n";
    for (const auto& s : f->series) {
      if (f->type == Type::histogram) {
        const Histogram& h = *s->histogram;
        const auto& bounds = h.upper_bounds();
        for (std::size_t i = 0; i <= bounds.size(); ++i) {
          std::string le;
          if (i == bounds.size()) {
            le = "+Inf";
          } else {
            append_number(le, bounds[i]);
          }
          out += f->name;
          out += "_bucket";
          append_labels(out, s->labels, "le", le);
          out += ' ';
          append_number(out, static_cast<double>(h.cumulative(i)));
          out += '\n';
        }
        out += f->name;
        out += "_sum";
        append_labels(out, s->labels);
        out += ' ';
        append_number(out, h.sum());
        out += '\n';
        out += f->name;
        out += "_count";
        append_labels(out, s->labels);
        out += ' ';
        append_number(out, static_cast<double>(h.count()));
        out += '\n';
        continue;
      }
      double v = 0;
      if (s->read) {
        v = s->read();
      } else if (s->counter) {
        v = static_cast<double>(s->counter->value());
      } else if (s->gauge) {
        v = static_cast<double>(s->gauge->value());
      }
      out += f->name;
      append_labels(out, s->labels);
      out += ' ';
      append_number(out, v);
      out += '\n';
    }
  }
  return out;
}

}  // namespace authwall::app
