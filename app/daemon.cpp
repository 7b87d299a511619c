#include "app/daemon.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>

#include "actions/dry_run_backend.h"
#include "actions/firewall_backend.h"
#include "actions/nft_backend.h"
#include "actions/reconcile.h"
#include "app/config.h"
#include "app/control_socket.h"
#include "app/http_server.h"
#include "app/log.h"
#include "app/metrics.h"
#include "app/pipeline.h"
#include "app/thread_priority.h"
#include "ingest/tcp_listener.h"
#include "ingest/udp_listener.h"
#include "normalize/custom_patterns.h"
#include "rules/rule_engine.h"
#include "state/ban_store.h"
#include "state/offence_store.h"
#include "state/sqlite_database.h"

namespace authwall::app {

namespace asio = boost::asio;

namespace {

// ---------------------------------------------------------------------------------------------
// The daemon

constexpr std::size_t kActionQueueCapacity = 65536;

struct IoWorker {
  asio::io_context io{1};
  std::unique_ptr<PipelineWorker> pipeline;
  std::unique_ptr<ingest::TcpWorker> tcp;
  std::thread thread;
};

class Daemon {
 public:
  explicit Daemon(ServeOptions options) : options_(std::move(options)), metrics_(registry_) {
    if (options_.io_threads == 0) options_.io_threads = 2;
    if (options_.shards == 0) options_.shards = 4;
  }

  int run();

 private:
  bool build_snapshot(const LoadedConfig& loaded, const RuleSnapshot* previous,
                      std::shared_ptr<RuleSnapshot>& out);
  std::size_t max_tracked_keys_ = 1'000'000;  // per rule; config at start-up
  // 0 when every listener is open, else the exit code (2: a bad address, 1: cannot bind).
  int open_listeners();
  void register_metrics();
  void on_signal(int signo);
  void reload();
  void stop();
  void housekeeping();
  void register_rule_metrics(const RuleSnapshot& snap);
  std::string control(std::string_view request);
  HttpResponse http(std::string_view method, std::string_view path);
  std::string submit_and_wait(ActionRequest&& r);

  ServeOptions options_;
  LoadedConfig loaded_;
  MetricsRegistry registry_;
  PipelineMetrics metrics_;
  asio::io_context control_io_{1};
  std::unique_ptr<asio::signal_set> signals_;
  std::unique_ptr<asio::steady_timer> housekeeping_timer_;

  std::unique_ptr<actions::FirewallBackend> backend_;
  std::string backend_name_;
  std::unique_ptr<state::BanStore> ban_store_;
  std::unique_ptr<state::SqliteOffenceStore> offences_;
  std::unique_ptr<state::WalCheckpointer> checkpointer_;
  BanBook book_;
  ActionQueue queue_{kActionQueueCapacity};
  std::unique_ptr<ActionsWorker> actions_;
  std::thread actions_thread_;

  SnapshotHolder snapshots_;
  std::shared_ptr<RuleSnapshot> snapshot_;  // the one published last (control thread only)
  std::vector<std::unique_ptr<IoWorker>> workers_;
  std::vector<std::unique_ptr<ingest::UdpListenerStats>> udp_stats_;
  std::vector<std::unique_ptr<ingest::UdpListener>> udp_;
  std::vector<std::size_t> udp_owner_;  // worker index per UDP listener
  std::vector<std::unique_ptr<ingest::TcpListenerStats>> tcp_stats_;
  std::vector<std::unique_ptr<ingest::TcpListener>> tcp_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<ControlSocketServer> control_;
  bool stopping_ = false;
  std::uint64_t housekeeping_ticks_ = 0;
  struct {
    std::uint64_t received = 0, events = 0, parse_errors = 0, bans = 0;
  } summary_;
  static constexpr std::int64_t kBanHistoryDays = 90;
  RateLimitedLog proxy_log_{60 * kMicrosPerSecond};
};

bool Daemon::build_snapshot(const LoadedConfig& loaded, const RuleSnapshot* previous,
                            std::shared_ptr<RuleSnapshot>& out) {
  out = std::make_shared<RuleSnapshot>();
  out->patterns = loaded.patterns;
  out->never_ban = loaded.config.never_ban;
  out->trusted_proxies = loaded.config.trusted_proxies;
  // never_ban and trusted_proxies are compiled into every engine: when they change, no engine
  // can be kept.
  const bool lists_same = previous != nullptr && previous->never_ban == out->never_ban &&
                          previous->trusted_proxies == out->trusted_proxies;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < loaded.rules.rules.size(); ++i) {
    const rules::RuleSpec& spec = loaded.rules.rules[i];
    std::shared_ptr<RuleUnit> unit;
    if (lists_same) {
      for (const auto& old : previous->units) {
        if (same_definition(old->spec, spec)) {
          unit = old;
          break;
        }
      }
    }
    if (unit) {
      ++kept;
    } else {
      unit = std::make_shared<RuleUnit>();
      unit->spec = spec;
      // A rule keyed by user alone counts one user over many addresses: one engine.
      const std::size_t shards = spec.key == rules::KeyKind::user ? 1 : options_.shards;
      rules::RuleSet one;
      one.rules.push_back(spec);
      for (std::size_t s = 0; s < shards; ++s) {
        rules::RuleEngineOptions eo;
        // The configured cap is per rule, over all of its shards (as at start-up: restart to
        // change it).
        eo.max_tracked_keys = std::max<std::size_t>(64, max_tracked_keys_ / shards);
        eo.history = offences_.get();
        eo.dedup.session_capacity = std::max<std::uint32_t>(1024, (1u << 16) / static_cast<std::uint32_t>(shards));
        eo.dedup.tie_capacity = std::max<std::uint32_t>(1024, (1u << 14) / static_cast<std::uint32_t>(shards));
        // Every rule's engine sees failures attributed to a trusted proxy; one warning suffices.
        if (i == 0) {
          eo.warn = [this](std::string_view text) {
            proxy_log_.log(LogLevel::warning, wall_now(), "%.*s", static_cast<int>(text.size()), text.data());
          };
        }
        auto le = std::make_unique<LockedEngine>();
        le->engine = std::make_unique<rules::RuleEngine>(one, out->never_ban, out->trusted_proxies, eo);
        unit->shards.push_back(std::move(le));
      }
    }
    out->units.push_back(std::move(unit));
  }
  if (previous != nullptr) {
    LOG_INFO("rules: %zu loaded, %zu kept their window state, %zu started empty",
             out->units.size(), kept, out->units.size() - kept);
  }
  return true;
}

int Daemon::open_listeners() {
  const ingest::SenderFilter filter(loaded_.config.listen.allowed_senders);
  std::size_t next = 0;
  asio::ip::address addr;
  unsigned short port = 0;
  // Validated at load already; a second check costs nothing and keeps this self-contained.
  const auto endpoint = [&](const char* transport, const std::string& text) {
    if (parse_host_port(text, addr, port)) return true;
    std::fprintf(stderr, "authwall: %s: listen.%s entry '%s' is not HOST:PORT\n",
                 loaded_.config.path.c_str(), transport, text.c_str());
    return false;
  };
  for (const auto& text : loaded_.config.listen.udp) {
    if (!endpoint("udp", text)) return 2;
    ingest::UdpListenerOptions o;
    o.endpoint = {addr, port};
    o.allowed_senders = filter;
    o.max_datagram = loaded_.config.listen.max_message_size;
    const std::size_t owner = next++ % workers_.size();
    udp_stats_.push_back(std::make_unique<ingest::UdpListenerStats>());
    auto l = std::make_unique<ingest::UdpListener>(workers_[owner]->io, *workers_[owner]->pipeline,
                                                   *udp_stats_.back(), o);
    std::string error;
    if (!l->open(error)) {
      LOG_ERROR("cannot listen on udp %s: %s", text.c_str(), error.c_str());
      return 1;
    }
    udp_.push_back(std::move(l));
    udp_owner_.push_back(owner);
  }
  std::vector<ingest::TcpWorker*> tcp_workers;
  for (auto& w : workers_) tcp_workers.push_back(w->tcp.get());
  for (const auto& text : loaded_.config.listen.tcp) {
    if (!endpoint("tcp", text)) return 2;
    ingest::TcpListenerOptions o;
    o.endpoint = {addr, port};
    o.allowed_senders = filter;
    o.max_connections = loaded_.config.listen.tcp_max_connections;
    o.max_frame = loaded_.config.listen.max_message_size;
    o.idle_timeout = std::chrono::seconds(loaded_.config.listen.tcp_idle_timeout_seconds);
    tcp_stats_.push_back(std::make_unique<ingest::TcpListenerStats>());
    auto l = std::make_unique<ingest::TcpListener>(control_io_, tcp_workers, *tcp_stats_.back(), o);
    std::string error;
    if (!l->open(error)) {
      LOG_ERROR("cannot listen on tcp %s: %s", text.c_str(), error.c_str());
      return 1;
    }
    tcp_.push_back(std::move(l));
  }
  return 0;
}

void Daemon::register_metrics() {
  auto& r = registry_;
  auto sum_udp = [this](auto member) {
    return [this, member] {
      double v = 0;
      for (const auto& s : udp_stats_) v += static_cast<double>(((*s).*member).load());
      return v;
    };
  };
  auto sum_tcp = [this](auto member) {
    return [this, member] {
      double v = 0;
      for (const auto& s : tcp_stats_) v += static_cast<double>(((*s).*member).load());
      return v;
    };
  };
  using U = ingest::UdpListenerStats;
  using T = ingest::TcpListenerStats;
  const char* dropped_help = "Messages dropped before normalization, by reason";
  r.counter_fn("authwall_messages_dropped_total", dropped_help, {{"reason", "sender_not_allowed"}},
               sum_udp(&U::dropped_sender));
  r.counter_fn("authwall_messages_dropped_total", dropped_help, {{"reason", "receive_buffer_full"}},
               sum_udp(&U::kernel_drops));
  r.counter_fn("authwall_messages_dropped_total", dropped_help, {{"reason", "oversize"}}, [this] {
    double v = 0;
    for (const auto& s : udp_stats_) v += static_cast<double>(s->dropped_truncated.load());
    for (const auto& s : tcp_stats_) v += static_cast<double>(s->oversize_drops.load());
    return v;
  });
  r.counter_fn("authwall_messages_dropped_total", dropped_help, {{"reason", "truncated_frame"}},
               sum_tcp(&T::truncated));
  r.counter_fn("authwall_messages_dropped_total", dropped_help, {{"reason", "empty_datagram"}},
               sum_udp(&U::dropped_empty));
  const char* bytes_help = "Bytes received on syslog sockets";
  r.counter_fn("authwall_bytes_received_total", bytes_help, {{"transport", "udp"}}, sum_udp(&U::bytes));
  r.counter_fn("authwall_bytes_received_total", bytes_help, {{"transport", "tcp"}}, sum_tcp(&T::bytes));
  r.gauge_fn("authwall_udp_receive_buffer_bytes", "Receive buffer the kernel granted per UDP socket (smallest)",
             {}, [this] {
               double v = 0;
               for (const auto& s : udp_stats_) {
                 const double b = static_cast<double>(s->receive_buffer_bytes.load());
                 v = v == 0 ? b : std::min(v, b);
               }
               return v;
             });
  r.gauge_fn("authwall_tcp_connections", "Open syslog TCP connections", {}, sum_tcp(&T::active));
  r.counter_fn("authwall_tcp_connections_accepted_total", "Syslog TCP connections accepted", {},
               sum_tcp(&T::accepted));
  const char* rejected_help = "Syslog TCP connections closed at accept, by reason";
  r.counter_fn("authwall_tcp_connections_rejected_total", rejected_help, {{"reason", "sender_not_allowed"}},
               sum_tcp(&T::rejected_sender));
  r.counter_fn("authwall_tcp_connections_rejected_total", rejected_help, {{"reason", "max_connections"}},
               sum_tcp(&T::rejected_limit));
  const char* closed_help = "Syslog TCP connections closed by authwall, by reason";
  r.counter_fn("authwall_tcp_connections_closed_total", closed_help, {{"reason", "idle"}},
               sum_tcp(&T::closed_idle));
  r.counter_fn("authwall_tcp_connections_closed_total", closed_help, {{"reason", "count_too_large"}},
               sum_tcp(&T::closed_count_too_large));
  r.counter_fn("authwall_tcp_connections_closed_total", closed_help, {{"reason", "bad_count"}},
               sum_tcp(&T::closed_bad_count));
  r.counter_fn("authwall_tcp_ignored_bytes_total",
               "Bytes ignored after a connection's framing failed (before its close)", {},
               sum_tcp(&T::ignored_bytes));
  r.gauge_fn("authwall_bans_active", "Bans currently in force", {},
             [this] { return static_cast<double>(book_.count(wall_now())); });
  r.gauge_fn("authwall_bans_held",
             "Active bans not in the firewall: inside a wider ban that ends sooner (sets refuse "
             "overlapping elements) until they take over, or refused by the kernel and retried",
             {}, [this] { return static_cast<double>(book_.held(wall_now()).size()); });
  r.gauge_fn("authwall_action_queue_depth", "Ban decisions waiting for the actions thread", {},
             [this] { return static_cast<double>(queue_.depth()); });
  r.gauge_fn("authwall_action_queue_capacity", "Capacity of the actions queue", {},
             [this] { return static_cast<double>(queue_.capacity()); });
  // Engine statistics are read under each shard's lock at scrape time.
  auto engine_sum = [this](auto field) {
    return [this, field] {
      std::uint64_t generation = 0;
      const auto snap = snapshots_.get(generation);
      double v = 0;
      for (const auto& unit : snap->units) {
        for (const auto& le : unit->shards) {
          std::lock_guard lock(le->mu);
          v += static_cast<double>(le->engine->stats().*field);
        }
      }
      return v;
    };
  };
  r.gauge_fn("authwall_tracked_keys", "Keys (addresses, prefixes, users) with live rule state", {},
             engine_sum(&rules::RuleEngineStats::tracked_keys));
  r.gauge_fn("authwall_rule_state_bytes", "Memory held by rule window tables", {},
             engine_sum(&rules::RuleEngineStats::state_bytes));
  r.counter_fn("authwall_rule_evictions_total",
               "Keys evicted while their window was live (table full); since the last reload", {},
               engine_sum(&rules::RuleEngineStats::evictions));
  r.gauge_fn("authwall_rules", "Rules loaded", {}, [this] {
    std::uint64_t generation = 0;
    return static_cast<double>(snapshots_.get(generation)->units.size());
  });
}

// Per rule: bans (created at zero so a rule that never fired still shows) and evaluations (events
// that reached the rule's engines; a rule whose definition changed at a reload starts again
// from zero, which Prometheus treats as a counter reset).
void Daemon::register_rule_metrics(const RuleSnapshot& snap) {
  for (const auto& unit : snap.units) {
    const std::string name = unit->spec.name;
    metrics_.bans_for_rule(name);
    registry_.counter_fn(
        "authwall_rule_evaluations_total", "Events evaluated by each rule", {{"rule", name}},
        [this, name] {
          std::uint64_t generation = 0;
          const auto current = snapshots_.get(generation);
          double v = 0;
          for (const auto& u : current->units) {
            if (u->spec.name != name) continue;
            for (const auto& le : u->shards) {
              std::lock_guard lock(le->mu);
              v += static_cast<double>(le->engine->stats().events);
            }
          }
          return v;
        });
  }
}

void Daemon::on_signal(int signo) {
  if (signo == SIGHUP) {
    reload();
  } else {
    stop();
    return;
  }
  signals_->async_wait([this](boost::system::error_code ec, int s) {
    if (!ec) on_signal(s);
  });
}

void Daemon::reload() {
  LOG_INFO("SIGHUP: reloading %s", options_.config_path.c_str());
  LoadedConfig next;
  std::vector<ConfigError> errors;
  if (!load_full_config(options_.config_path, next, errors)) {
    for (const auto& e : errors) LOG_ERROR("%s", e.to_string().c_str());
    LOG_ERROR("reload rejected (%zu error%s); the previous configuration keeps running",
              errors.size(), errors.size() == 1 ? "" : "s");
    metrics_.reloads_failed->inc();
    return;
  }
  // Sockets, the state database and the firewall layout are opened once; say so rather than
  // pretend they changed.
  const Config& a = loaded_.config;
  const Config& b = next.config;
  auto differs = [](const char* what) {
    LOG_WARNING("reload: %s changed; that takes effect only after a restart", what);
  };
  if (a.listen.udp != b.listen.udp || a.listen.tcp != b.listen.tcp) differs("listen addresses");
  if (a.listen.allowed_senders != b.listen.allowed_senders) differs("listen.allowed_senders");
  if (a.metrics_listen != b.metrics_listen) differs("metrics.listen");
  if (a.control_socket != b.control_socket) differs("control.socket");
  if (a.state_path != b.state_path) differs("state.path");
  if (a.max_tracked_keys != b.max_tracked_keys) differs("max_tracked_keys");
  if (a.firewall.backend != b.firewall.backend || a.firewall.table != b.firewall.table ||
      a.firewall.ports != b.firewall.ports || a.firewall.all_ports != b.firewall.all_ports ||
      a.firewall.hooks != b.firewall.hooks) {
    differs("firewall");
  }
  std::shared_ptr<RuleSnapshot> snap;
  build_snapshot(next, snapshot_.get(), snap);
  snapshot_ = snap;
  snapshots_.publish(snap);
  register_rule_metrics(*snap);
  loaded_ = std::move(next);
  metrics_.reloads_ok->inc();
  LOG_INFO("reload complete: %zu rules, %zu custom patterns", snap->units.size(),
           snap->patterns ? snap->patterns->size() : 0);
}

void Daemon::housekeeping() {
  const UnixMicros now = wall_now();
  book_.prune(now);
  // Every second, so the write-ahead log never grows to the stores' automatic checkpoint, which
  // would sync inside a ban's commit (state/sqlite_database.h).
  checkpointer_->checkpoint();
  // Hourly: keep the state database from growing without bound. Ban history is kept for a
  // while for audits; offence history only as far back as escalation looks.
  // Every 10 minutes, one summary line (the data path itself never logs per message).
  if (housekeeping_ticks_ % 600 == 599) {
    std::uint64_t received = 0;
    for (const Counter* c : metrics_.received) received += c->value();
    std::uint64_t events = 0;
    for (const auto& per_source : metrics_.events) {
      for (const Counter* c : per_source) events += c->value();
    }
    const std::uint64_t parse_errors = metrics_.dropped_parse->value();
    const std::uint64_t bans = metrics_.ban_latency->count();
    if (received != summary_.received) {
      LOG_INFO("last 10 min: %llu messages, %llu events, %llu unparseable, %llu automatic bans; %zu bans active",
               static_cast<unsigned long long>(received - summary_.received),
               static_cast<unsigned long long>(events - summary_.events),
               static_cast<unsigned long long>(parse_errors - summary_.parse_errors),
               static_cast<unsigned long long>(bans - summary_.bans), book_.count(now));
    }
    summary_ = {received, events, parse_errors, bans};
  }
  if (++housekeeping_ticks_ % 3600 == 1) {
    ban_store_->purge_expired(now);
    ban_store_->prune_history(now - kBanHistoryDays * 86400 * kMicrosPerSecond);
    offences_->prune(now - rules::RuleEngineOptions{}.history_window_seconds * kMicrosPerSecond);
  }
  for (const auto& unit : snapshot_->units) {
    for (const auto& le : unit->shards) {
      std::lock_guard lock(le->mu);
      le->engine->sweep(now, 512);
    }
  }
  housekeeping_timer_->expires_after(std::chrono::seconds(1));
  housekeeping_timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopping_) housekeeping();
  });
}

std::string Daemon::submit_and_wait(ActionRequest&& r) {
  auto promise = std::make_shared<std::promise<std::string>>();
  auto future = promise->get_future();
  r.reply = promise;
  if (!queue_.push(std::move(r))) return "error the actions queue is full; try again\n";
  // The control thread waits for the commit so `authwall ban` returns once the ban is in force
  // (and a following `authwall bans` lists it). Manual commands are rare; HTTP scrapes wait.
  if (future.wait_for(std::chrono::seconds(15)) != std::future_status::ready) {
    return "error the firewall did not confirm the change within 15 s\n";
  }
  return future.get();
}

std::string Daemon::control(std::string_view request) {
  const UnixMicros now = wall_now();
  auto word = [&request]() {
    while (!request.empty() && request.front() == ' ') request.remove_prefix(1);
    const auto sp = request.find(' ');
    std::string_view w = request.substr(0, sp);
    request = sp == std::string_view::npos ? std::string_view() : request.substr(sp + 1);
    return w;
  };
  const std::string_view cmd = word();
  if (cmd == "bans") {
    const std::string_view form = word();
    const auto bans = book_.list(now);
    return "ok\n" + (form == "json" ? format_bans_json(bans, now) : format_bans_table(bans, now));
  }
  if (cmd == "ban" || cmd == "unban") {
    const std::string target_text(word());
    IpPrefix target;
    if (!IpPrefix::parse(target_text, target)) {
      return "error usage: '" + target_text + "' is not ADDR or ADDR/PREFIX with the host bits zero\n";
    }
    ActionRequest r;
    r.manual = true;
    r.target = target;
    r.received = now;
    r.rule.assign("manual");
    if (cmd == "ban") {
      const std::string seconds_text(word());
      char* end = nullptr;
      const long long seconds = std::strtoll(seconds_text.c_str(), &end, 10);
      if (seconds_text.empty() || *end != '\0' || seconds <= 0 || seconds > rules::kMaxBanSeconds) {
        return "error usage: the ban duration must be between 1 second and 365 days\n";
      }
      for (const auto& p : snapshot_->never_ban) {
        if (p.contains(target.network) || target.contains(p.network)) {
          return "error usage: " + target.to_string() + " overlaps never_ban entry " + p.to_string() + "\n";
        }
      }
      // Banning a proxy would lock out every client behind it.
      for (const auto& p : snapshot_->trusted_proxies) {
        if (p.contains(target.network) || target.contains(p.network)) {
          return "error usage: " + target.to_string() + " overlaps trusted_proxies entry " +
                 p.to_string() + " (banning it would lock out every client behind that proxy)\n";
        }
      }
      r.kind = ActionRequest::Kind::ban;
      r.duration_seconds = seconds;
    } else {
      r.kind = ActionRequest::Kind::unban;
    }
    return submit_and_wait(std::move(r));
  }
  return "error usage: unknown request (expected: bans json|text, ban TARGET SECONDS, unban TARGET)\n";
}

HttpResponse Daemon::http(std::string_view method, std::string_view path) {
  if (method != "GET" && method != "HEAD") {
    return {405, "text/plain; charset=utf-8", "only GET is supported\n"};
  }
  if (path == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", registry_.render()};
  }
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (path == "/api/v1/bans") {
    const UnixMicros now = wall_now();
    return {200, "application/json", format_bans_json(book_.list(now), now)};
  }
  return {404, "text/plain; charset=utf-8", "not found (try /metrics, /healthz, /api/v1/bans)\n"};
}

void Daemon::stop() {
  if (stopping_) return;
  stopping_ = true;
  LOG_INFO("stopping: no new connections; draining what was received");
  if (http_) http_->stop();
  if (control_) control_->stop();
  if (housekeeping_timer_) housekeeping_timer_->cancel();
  for (auto& l : tcp_) l->stop();
  for (std::size_t i = 0; i < udp_.size(); ++i) {
    ingest::UdpListener* l = udp_[i].get();
    asio::post(workers_[udp_owner_[i]]->io, [l] { l->drain_and_close(); });
  }
  // Queued after every drain above: each worker's last handler ends its loop.
  for (auto& w : workers_) {
    asio::io_context* io = &w->io;
    asio::post(*io, [io] { io->stop(); });
  }
  // Let the acceptor-close handlers posted by the TCP listeners run, then return from run().
  asio::post(control_io_, [this] { control_io_.stop(); });
}

int Daemon::run() {
  // Signals are caught from the start: one that arrives while the daemon is still opening its
  // state and reconciling the firewall (a logrotate SIGHUP, a quick SIGTERM) waits for the
  // handler below instead of killing the process with the default action.
  signals_ = std::make_unique<asio::signal_set>(control_io_, SIGTERM, SIGINT, SIGHUP);
  std::vector<ConfigError> errors;
  if (!load_full_config(options_.config_path, loaded_, errors)) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "authwall: %zu error%s in the configuration; not starting\n", errors.size(),
                 errors.size() == 1 ? "" : "s");
    return 2;
  }
  const Config& config = loaded_.config;
  if (config.state_path.empty()) {
    std::fprintf(stderr, "authwall: %s: state.path is required for serve\n", config.path.c_str());
    return 2;
  }

  std::string error;
  // Sockets first: a second daemon on the same configuration fails here, before it touches the
  // state database or the firewall the running one owns.
  for (std::size_t i = 0; i < options_.io_threads; ++i) {
    auto w = std::make_unique<IoWorker>();
    w->pipeline = std::make_unique<PipelineWorker>(snapshots_, metrics_, queue_);
    w->tcp = std::make_unique<ingest::TcpWorker>(w->io, *w->pipeline);
    workers_.push_back(std::move(w));
  }
  if (const int rc = open_listeners(); rc != 0) return rc;

  if (!config.metrics_listen.empty()) {
    asio::ip::address addr;
    unsigned short port = 0;
    if (!parse_host_port(config.metrics_listen, addr, port)) {
      std::fprintf(stderr, "authwall: %s: metrics.listen '%s' is not HOST:PORT\n", config.path.c_str(),
                   config.metrics_listen.c_str());
      return 2;
    }
    http_ = std::make_unique<HttpServer>(
        control_io_, [this](std::string_view m, std::string_view p) { return http(m, p); });
    if (!http_->listen({addr, port}, error)) {
      LOG_ERROR("cannot listen on metrics.listen %s: %s", config.metrics_listen.c_str(), error.c_str());
      return 1;
    }
  }
  if (!config.control_socket.empty()) {
    control_ = std::make_unique<ControlSocketServer>(
        control_io_, [this](std::string_view request) { return control(request); });
    if (!control_->listen(config.control_socket, 0600, error)) {
      LOG_ERROR("%s", error.c_str());
      return 1;
    }
  }

  // Then the state: the offence history feeds escalation, the ban store reconciliation.
  std::error_code fs_error;
  const auto state_dir = std::filesystem::path(config.state_path).parent_path();
  if (!state_dir.empty()) std::filesystem::create_directories(state_dir, fs_error);
  ban_store_ = state::BanStore::open(config.state_path, error);
  if (!ban_store_) {
    LOG_ERROR("%s", error.c_str());
    return 1;
  }
  offences_ = state::SqliteOffenceStore::open(config.state_path, error);
  if (!offences_) {
    LOG_ERROR("%s", error.c_str());
    return 1;
  }
  checkpointer_ = state::WalCheckpointer::open(config.state_path, error);
  if (!checkpointer_) {
    LOG_ERROR("%s", error.c_str());
    return 1;
  }

  if (options_.dry_run || config.firewall.backend == "dry-run") {
    backend_ = std::make_unique<actions::DryRunBanBackend>();
    backend_name_ = "dry-run";
  } else {
    actions::NftLayout layout;
    layout.table = config.firewall.table;
    layout.all_ports = config.firewall.all_ports;
    layout.ports = config.firewall.ports;
    layout.hooks = config.firewall.hooks;
    backend_ = std::make_unique<actions::NftBanBackend>(layout);
    backend_name_ = "nftables (table inet " + config.firewall.table + ")";
  }
  const actions::PrepareResult prepared = backend_->prepare();
  if (!prepared.ok) {
    LOG_ERROR("firewall backend %s: %s", backend_name_.c_str(), prepared.error.c_str());
    if (prepared.permission_denied) {
      LOG_ERROR("run as root (CAP_NET_ADMIN), or use --dry-run to leave the firewall alone");
    }
    return 1;
  }
  // Reconciliation runs before the actions thread exists, so it is still the only user of the
  // backend (the one-thread contract of FirewallBackend).
  const UnixMicros start = wall_now();
  const actions::ReconcileResult rec = actions::reconcile(*ban_store_, *backend_, start);
  if (!rec.ok) {
    LOG_WARNING("reconciliation incomplete: %s", rec.error.c_str());
  }
  std::vector<state::BanRecord> active;
  if (ban_store_->active_bans(start, active)) {
    for (const auto& b : active) {
      book_.put(ActiveBan{b.target, b.rule, b.created, b.expires, 1});
    }
    for (const IpPrefix& target : rec.held) book_.set_in_firewall(target, false);
  }
  const std::string held_note =
      rec.held.empty() ? "" : "; " + std::to_string(rec.held.size()) + " held inside wider bans";
  LOG_INFO("firewall: %s; %zu bans restored, %zu expired while stopped, %zu foreign elements removed%s%s",
           backend_name_.c_str(), rec.restored, rec.expired_dropped, rec.foreign_removed,
           held_note.c_str(), rec.failed > 0 ? " (some changes failed)" : "");


  max_tracked_keys_ = loaded_.config.max_tracked_keys;
  build_snapshot(loaded_, nullptr, snapshot_);
  snapshots_.publish(snapshot_);
  register_rule_metrics(*snapshot_);
  metrics_.bans_for_rule("manual");
  register_metrics();

  signals_->async_wait([this](boost::system::error_code ec, int s) {
    if (!ec) on_signal(s);
  });
  housekeeping_timer_ = std::make_unique<asio::steady_timer>(control_io_);
  housekeeping();

  actions_ = std::make_unique<ActionsWorker>(*backend_, *ban_store_, book_, queue_, metrics_,
                                             offences_.get());
  actions_thread_ = std::thread([this] {
    // A ban should not wait for a CPU behind the I/O workers or other processes on a busy
    // machine (app/thread_priority.h); without the privilege it runs at the normal priority.
    int nice = 0;
    std::string why;
    if (lower_thread_nice(kActionsNiceBoost, nice, why)) {
      LOG_INFO("actions thread: nice %d", nice);
    } else {
      LOG_INFO("actions thread keeps nice %d: %s", nice, why.c_str());
    }
    actions_->run();
  });
  for (auto& l : udp_) l->start();
  for (auto& l : tcp_) l->start();
  for (auto& w : workers_) {
    IoWorker* raw = w.get();
    w->thread = std::thread([raw] {
      auto guard = asio::make_work_guard(raw->io);
      raw->io.run();
    });
  }

  std::string where;
  for (const auto& u : udp_) where += " udp " + u->local_endpoint().address().to_string() + ":" + std::to_string(u->local_endpoint().port());
  for (const auto& t : tcp_) where += " tcp " + t->local_endpoint().address().to_string() + ":" + std::to_string(t->local_endpoint().port());
  LOG_INFO("serving:%s; metrics %s; control %s; %zu rules; %zu I/O threads", where.c_str(),
           config.metrics_listen.empty() ? "off" : config.metrics_listen.c_str(),
           config.control_socket.empty() ? "off" : config.control_socket.c_str(),
           snapshot_->units.size(), workers_.size());

  control_io_.run();

  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  // Every received message has gone through the rules; the actions thread commits and
  // persists whatever they decided, then ends.
  queue_.close();
  if (actions_thread_.joinable()) actions_thread_.join();
  const UnixMicros end = wall_now();
  ban_store_->purge_expired(end);
  LOG_INFO("stopped: %zu bans active", book_.count(end));
  return 0;
}

}  // namespace

int run_daemon(const ServeOptions& options) {
  Daemon daemon(options);
  return daemon.run();
}

}  // namespace authwall::app
