// The Prometheus registry's text output (format 0.0.4) and its update paths.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "app/metrics.h"

namespace authwall::app {
namespace {

TEST(MetricsRegistry, RendersCountersGaugesAndFunctionsGroupedByFamily) {
  MetricsRegistry r;
  r.counter("authwall_messages_received_total", "Messages received", {{"transport", "udp"}}).inc(3);
  r.gauge("authwall_bans_active", "Bans in force").set(7);
  r.counter("authwall_messages_received_total", "Messages received", {{"transport", "tcp"}}).inc();
  r.gauge_fn("authwall_queue_depth", "Depth", {}, [] { return 42.0; });
  // The same (name, labels) is the same series.
  r.counter("authwall_messages_received_total", "Messages received", {{"transport", "udp"}}).inc(2);
  EXPECT_EQ(r.render(),
            "# HELP authwall_messages_received_total Messages received\n"
            "# TYPE authwall_messages_received_total counter\n"
            "authwall_messages_received_total{transport=\"udp\"} 5\n"
            "authwall_messages_received_total{transport=\"tcp\"} 1\n"
            "# HELP authwall_bans_active Bans in force\n"
            "# TYPE authwall_bans_active gauge\n"
            "authwall_bans_active 7\n"
            "# HELP authwall_queue_depth Depth\n"
            "# TYPE authwall_queue_depth gauge\n"
            "authwall_queue_depth 42\n");
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry r;
  Histogram& h = r.histogram("authwall_ban_latency_seconds", "Latency", {0.001, 0.01, 0.1});
  h.observe(0.0005);
  h.observe(0.001);  // upper bounds are inclusive
  h.observe(0.05);
  h.observe(3);
  const std::string text = r.render();
  EXPECT_NE(text.find("# TYPE authwall_ban_latency_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("authwall_ban_latency_seconds_bucket{le=\"0.001\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("authwall_ban_latency_seconds_bucket{le=\"0.01\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("authwall_ban_latency_seconds_bucket{le=\"0.1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("authwall_ban_latency_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("authwall_ban_latency_seconds_sum 3.0515\n"), std::string::npos) << text;
  EXPECT_NE(text.find("authwall_ban_latency_seconds_count 4\n"), std::string::npos);
}

TEST(MetricsRegistry, EscapesLabelValuesAndRejectsBadNames) {
  MetricsRegistry r;
  r.counter("authwall_bans_total", "Bans", {{"rule", "a\"b\\c\nd"}}).inc();
  EXPECT_NE(r.render().find("authwall_bans_total{rule=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos);
  EXPECT_THROW(r.counter("9bad", "x"), std::invalid_argument);
  EXPECT_THROW(r.counter("ok_total", "x", {{"le", "1"}}), std::invalid_argument);
  EXPECT_THROW(r.gauge("authwall_bans_total", "type clash"), std::invalid_argument);
}

}  // namespace
}  // namespace authwall::app
