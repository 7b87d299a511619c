#pragma once
// A small Prometheus registry, text exposition format 0.0.4 (what `promtool check metrics`
// reads). Series are created at start-up or reload (under a lock) and then updated lock-free
// from the data path with relaxed atomics; render() reads them at scrape time.
//
// Label values come only from bounded sets the daemon defines (transports, drop reasons,
// rule names from the configuration, event sources/kinds): never an address or a user name.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace authwall::app {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// Fixed upper bounds chosen at creation; observe() is lock-free.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value) noexcept;
  const std::vector<double>& upper_bounds() const noexcept { return bounds_; }
  // Cumulative count for bucket i (i == bounds.size() is +Inf), count and sum.
  std::uint64_t cumulative(std::size_t i) const noexcept;
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // non-cumulative, +Inf last
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

class MetricsRegistry {
 public:
  // Returns the series for (name, labels), creating it (and its family) on first use; the
  // reference stays valid for the registry's lifetime. Throws std::invalid_argument for an
  // invalid name, or a name already registered with another type (a programming error).
  Counter& counter(std::string_view name, std::string_view help, MetricLabels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, MetricLabels labels = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       std::vector<double> upper_bounds, MetricLabels labels = {});
  // Series whose value is computed at scrape time (queue depths, kernel drop counters, sizes
  // of tables owned by other threads). `read` must be thread-safe. Re-registering the same
  // (name, labels) replaces the function.
  void counter_fn(std::string_view name, std::string_view help, MetricLabels labels,
                  std::function<double()> read);
  void gauge_fn(std::string_view name, std::string_view help, MetricLabels labels,
                std::function<double()> read);

  // The whole registry in the text exposition format, families in registration order.
  std::string render() const;

 private:
  enum class Type { counter, gauge, histogram };
  struct Series {
    MetricLabels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> read;
  };
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::vector<std::unique_ptr<Series>> series;
  };
  Series& series_locked(std::string_view name, std::string_view help, Type type,
                        MetricLabels&& labels);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;
};

// Escapes a label value for the text format (backslash, double quote, newline).
std::string escape_label_value(std::string_view v);

}  // namespace authwall::app
