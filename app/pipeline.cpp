#include "app/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <unordered_map>

#include "common/duration.h"
#include "ingest/syslog_parser.h"
#include "rules/hash.h"

namespace authwall::app {

UnixMicros wall_now() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<double> ban_latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

PipelineMetrics::PipelineMetrics(MetricsRegistry& r) : registry(r) {
  for (const auto t : {ingest::Transport::udp, ingest::Transport::tcp}) {
    received[static_cast<std::size_t>(t)] =
        &r.counter("authwall_messages_received_total",
                   "Syslog messages received (datagrams, TCP frames) and handed to the parser",
                   {{"transport", std::string(ingest::to_string(t))}});
  }
  dropped_parse = &r.counter("authwall_messages_dropped_total",
                             "Messages dropped before normalization, by reason",
                             {{"reason", "parse_error"}});
  for (std::size_t e = 1; e < kParseErrorCount; ++e) {
    parse_errors[e] = &r.counter(
        "authwall_parse_errors_total", "Messages that were not valid syslog, by parser error",
        {{"reason", std::string(ingest::to_string(static_cast<ingest::SyslogParseError>(e)))}});
  }
  for (std::size_t s = 0; s < kSourceCount; ++s) {
    const std::string source(normalize::to_string(static_cast<normalize::EventSource>(s)));
    unrecognized[s] = &r.counter(
        "authwall_unrecognized_lines_total",
        "Lines from a known daemon that looked like a failure but matched no template",
        {{"source", source}});
    for (std::size_t k = 0; k < kKindCount; ++k) {
      events[s][k] = &r.counter(
          "authwall_events_total", "Authentication events recognised, by source and kind",
          {{"source", source},
           {"kind", std::string(normalize::to_string(static_cast<normalize::EventKind>(k)))}});
    }
  }
  decisions_dropped = &r.counter(
      "authwall_ban_decisions_dropped_total",
      "Ban decisions dropped because the actions queue was full");
  narrowed = &r.counter(
      "authwall_bans_narrowed_total",
      "Bans cut from the rule's prefix to the single address because the prefix holds a "
      "never_ban or trusted_proxies entry");
  ban_latency = &r.histogram(
      "authwall_ban_latency_seconds",
      "From receiving the message that crossed a threshold to the ban being committed to the "
      "firewall",
      ban_latency_buckets());
  firewall_errors = &r.counter("authwall_firewall_errors_total",
                               "Firewall changes that failed (batch or element errors)");
  firewall_batches = &r.counter("authwall_firewall_batches_total",
                                "Batches committed to the firewall backend");
  unbans = &r.counter("authwall_unbans_total", "Bans lifted by `authwall unban`");
  redundant = &r.counter("authwall_bans_redundant_total",
                         "Ban decisions already covered by a longer active ban (no change)");
  reloads_ok = &r.counter("authwall_config_reloads_total", "SIGHUP configuration reloads",
                          {{"result", "success"}});
  reloads_failed = &r.counter("authwall_config_reloads_total", "SIGHUP configuration reloads",
                              {{"result", "failure"}});
  trusted_proxy_failures = &r.counter(
      "authwall_trusted_proxy_failures_total",
      "Failed logins attributed to a trusted proxy (never banned; PROXY protocol probably "
      "misconfigured)");
  store_errors = &r.counter("authwall_state_errors_total",
                            "Writes to the state database that failed");
}

namespace {

bool same_match(const rules::MatchSpec& a, const rules::MatchSpec& b) {
  if (a.kind_mask != b.kind_mask || a.source_mask != b.source_mask || a.ip != b.ip) return false;
  for (std::size_t i = 0; i < rules::kMatchFieldCount; ++i) {
    const auto& x = a.fields[i];
    const auto& y = b.fields[i];
    if (x.has_value() != y.has_value()) return false;
    if (x && (x->values != y->values || x->allow_null != y->allow_null)) return false;
  }
  return true;
}

}  // namespace

bool same_definition(const rules::RuleSpec& a, const rules::RuleSpec& b) {
  if (a.name != b.name || !same_match(a.match, b.match)) return false;
  if (a.exclude.has_value() != b.exclude.has_value()) return false;
  if (a.exclude && !same_match(*a.exclude, *b.exclude)) return false;
  return a.key == b.key && a.prefix_v4 == b.prefix_v4 && a.prefix_v6 == b.prefix_v6 &&
         a.window_seconds == b.window_seconds && a.threshold == b.threshold &&
         a.distinct_user == b.distinct_user && a.reset_on_success == b.reset_on_success &&
         a.ban.duration_seconds == b.ban.duration_seconds && a.ban.factor == b.ban.factor &&
         a.ban.max_seconds == b.ban.max_seconds;
}

LockedEngine& RuleUnit::engine_for(const IpAddress& ip) noexcept {
  if (shards.size() == 1) return *shards[0];
  // The rule's own prefix: every address of one /64 (one key) meets the same engine.
  const IpPrefix p = IpPrefix::of(ip, ip.is_v4 ? spec.prefix_v4 : spec.prefix_v6);
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  std::memcpy(&a, p.network.bytes.data(), 8);
  std::memcpy(&b, p.network.bytes.data() + 8, 8);
  const std::uint64_t h = rules::mix64(a ^ rules::mix64(b ^ (p.network.is_v4 ? 4 : 6)));
  return *shards[h % shards.size()];
}

void ActionsWorker::run() {
  std::vector<ActionRequest> batch;
  batch.reserve(queue_.capacity());
  // The database's checkpoints (the syncs) are not done here but on the daemon's control thread
  // (state::WalCheckpointer): a ban arriving during one would wait for it.
  while (queue_.take_all(batch, std::chrono::seconds(1))) {
    release_held(wall_now());  // first: the database below may keep the thread a while
    if (batch.empty()) {
      flush_writes(wall_now());
      flush_offences(wall_now());
      continue;
    }
    process(batch);
    batch.clear();
  }
  flush_writes(wall_now());
  flush_offences(wall_now());
}

void ActionsWorker::process(std::vector<ActionRequest>& batch) {
  commit(batch);  // its store writes also retry any still pending (in order)
  release_held(wall_now());
  // After the kernel commit, outside the measured latency: the offences behind this batch's
  // bans (and any decided since) become durable. Also when nothing was committed — a decision
  // that turned out redundant was still an offence.
  flush_offences(wall_now());
}

void ActionsWorker::flush_offences(UnixMicros now) {
  if (offences_ == nullptr || offences_->flush()) return;
  metrics_.store_errors->inc();
  store_log_.log(LogLevel::warning, now,
                 "cannot record offence history in the state database (kept in memory, retried): %s",
                 offences_->last_error().c_str());
}

void ActionsWorker::write(PendingWrite w, UnixMicros now) {
  if (pending_writes_.size() >= kMaxPendingWrites) {
    pending_writes_.pop_front();  // bounded: the oldest is lost, and said so
    metrics_.store_errors->inc();
    store_log_.log(LogLevel::error, now, "state database unwritable for too long: oldest ban record dropped");
  }
  pending_writes_.push_back(std::move(w));
}

bool ActionsWorker::flush_writes(UnixMicros now) {
  // In order: an unban must not be overtaken by the ban it ends, nor a ban by an older one.
  while (!pending_writes_.empty()) {
    const PendingWrite& w = pending_writes_.front();
    const bool ok = w.ban ? store_.record_bans(w.records)
                          : store_.record_unbans(w.targets, w.source, w.at);
    if (!ok) {
      metrics_.store_errors->inc();
      store_log_.log(LogLevel::warning, now,
                     "cannot record %s in the state database (kept in memory, retried): %s",
                     w.ban ? "bans" : "unbans", store_.last_error().c_str());
      return false;
    }
    pending_writes_.pop_front();
  }
  return true;
}

void ActionsWorker::reply(ActionRequest& r, std::string text) {
  if (r.reply) r.reply->set_value(std::move(text));
}

actions::BanChange ActionsWorker::to_change(const ActionRequest& r) {
  if (r.kind == ActionRequest::Kind::unban) return actions::BanChange::remove(r.target);
  const std::int64_t d = std::clamp<std::int64_t>(r.duration_seconds, 1, 0xffffffffLL);
  return actions::BanChange::add(r.target, static_cast<std::uint32_t>(d));
}

void ActionsWorker::commit(std::vector<ActionRequest>& batch) {
  const UnixMicros now = wall_now();
  changes_.clear();
  origins_.clear();
  records_.clear();
  unban_targets_.clear();
  superseded_.clear();
  restored_.clear();
  // Within one batch a target is changed once: several rules may decide on the same address
  // at the same moment, and a later request for it overrides an earlier one.
  std::unordered_map<std::string, std::size_t> by_target;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    ActionRequest& r = batch[i];
    const std::string key = r.target.to_string();
    if (r.kind == ActionRequest::Kind::ban) {
      if (const auto existing = book_.covering(r.target, now);
          existing && existing->expires >= expires_of(r, now)) {
        metrics_.redundant->inc();
        reply(r, "ok\n" + key + " is already banned until " +
                     format_rfc3339(existing->expires - existing->expires % kMicrosPerSecond) +
                     " (rule " + existing->rule + ")\n");
        continue;
      }
    }
    if (const auto it = by_target.find(key); it != by_target.end()) {
      const std::size_t prev = origins_[it->second];
      const bool both_bans = batch[prev].kind == ActionRequest::Kind::ban && r.kind == ActionRequest::Kind::ban;
      if (both_bans && batch[prev].duration_seconds >= r.duration_seconds) {
        metrics_.redundant->inc();
        reply(r, "ok\n" + key + " is banned in the same batch for longer\n");
        continue;
      }
      // The earlier request is superseded.
      reply(batch[prev], "ok\n" + key + ": superseded by a later request\n");
      origins_[it->second] = i;
      changes_[it->second] = to_change(r);
      continue;
    }
    by_target.emplace(key, changes_.size());
    changes_.push_back(to_change(r));
    origins_.push_back(i);
  }
  if (changes_.empty()) return;

  // What goes to the firewall. nftables interval sets refuse overlapping elements, so a ban
  // inside a wider one (in force, or decided in this batch) is held in the book and the store
  // until the wider one ends (release_held), and a ban that goes in takes the narrower ones it
  // covers out of the firewall: those ending before it are superseded, the others are held.
  BanBook incoming;
  for (std::size_t c = 0; c < changes_.size(); ++c) {
    const ActionRequest& r = batch[origins_[c]];
    if (r.kind == ActionRequest::Kind::ban) incoming.put(ActiveBan{r.target, {}, now, expires_of(r, now)});
  }
  // The change in this batch for `target` and its kind, if any.
  const auto own_change = [&](const IpPrefix& target) -> std::pair<std::size_t, ActionRequest::Kind> {
    const auto it = by_target.find(target.to_string());
    if (it == by_target.end()) return {kNone, ActionRequest::Kind::ban};
    return {it->second, batch[origins_[it->second]].kind};
  };
  firewall_.clear();
  steps_.clear();
  held_requests_.clear();
  book_only_unbans_.clear();
  covered_.assign(changes_.size(), false);
  // Unbans first: the kernel checks overlaps at each step of the transaction, and a ban may
  // cover what an unban in the same batch removes.
  std::vector<std::size_t> order(changes_.size());
  for (std::size_t c = 0; c < order.size(); ++c) order[c] = c;
  std::stable_partition(order.begin(), order.end(), [&](std::size_t c) {
    return batch[origins_[c]].kind == ActionRequest::Kind::unban;
  });
  for (const std::size_t c : order) {
    const std::size_t i = origins_[c];
    ActionRequest& r = batch[i];
    if (r.kind == ActionRequest::Kind::unban) {
      // A held ban has no element of its own (the kernel would refuse the "add" of its delete
      // as an overlap): the book and the store forget it, the firewall is left alone.
      if (const auto b = book_.find(r.target, now); b && !b->in_firewall) {
        book_only_unbans_.push_back(i);
        continue;
      }
    } else {
      const std::vector<ActiveBan> in_batch = incoming.wider(r.target, now);
      const UnixMicros expires = expires_of(r, now);
      if (std::any_of(in_batch.begin(), in_batch.end(),
                      [&](const ActiveBan& w) { return w.expires >= expires; })) {
        metrics_.redundant->inc();
        reply(r, "ok\n" + r.target.to_string() + " is inside a longer ban in the same batch\n");
        covered_[c] = true;
        continue;
      }
      if (!in_batch.empty() || !book_.wider(r.target, now).empty()) {
        held_requests_.push_back(i);
        continue;
      }
    }
    // The narrower ones leave before the wider one is added (held ones too: a held entry may
    // still have an element from before, and deleting an absent one succeeds).
    const std::size_t first_removal = firewall_.size();
    if (r.kind == ActionRequest::Kind::ban) {
      for (const ActiveBan& narrower : book_.inside(r.target, now)) {
        // An unban of it in this batch removes it anyway; a re-ban of it is held (inside r).
        const auto [own, kind] = own_change(narrower.target);
        if (own != kNone && kind == ActionRequest::Kind::unban) continue;
        firewall_.push_back(actions::BanChange::remove(narrower.target));
        steps_.push_back(FirewallStep{kNone, 0, narrower, own});
      }
    }
    for (std::size_t k = first_removal; k < steps_.size(); ++k) steps_[k].owner = firewall_.size();
    firewall_.push_back(changes_[c]);
    steps_.push_back(FirewallStep{i, 0, {}, kNone});
  }

  // The store is the record of intent: bans are written before the kernel sees them, so a
  // crash in between is repaired by reconciliation at the next start.
  for (std::size_t c = 0; c < changes_.size(); ++c) {
    const ActionRequest& r = batch[origins_[c]];
    if (r.kind == ActionRequest::Kind::ban && !covered_[c]) {
      records_.push_back(state::BanRecord{r.target, std::string(r.rule.view()),
                                          r.manual ? state::BanSource::kManual : state::BanSource::kAuto,
                                          now, expires_of(r, now)});
    }
  }
  // While the database fails (writes pending), a batch does not wait for it before the
  // firewall: its records queue up and are tried after the commit. One attempt per commit.
  bool may_flush = true;
  if (!records_.empty()) {
    const bool store_was_fine = pending_writes_.empty();
    write(PendingWrite{true, records_, {}, state::BanSource::kAuto, now}, now);
    if (store_was_fine) may_flush = flush_writes(now);
  }

  std::vector<bool> failed(firewall_.size(), false);
  actions::BatchResult result;
  if (!firewall_.empty()) {
    result = backend_.apply(firewall_, now);
    metrics_.firewall_batches->inc();
    for (const auto& f : result.failures) {
      if (f.index < failed.size()) failed[f.index] = true;
    }
    if (!result.error.empty() && result.applied == 0) std::fill(failed.begin(), failed.end(), true);
  }
  const UnixMicros committed = wall_now();

  std::size_t banned = 0;
  std::vector<IpPrefix> failed_bans;
  const auto log_ban = [&](const IpPrefix& target, const ActionRequest& r, const char* note) {
    if (++banned <= kBanLinesPerBatch) {
      LOG_INFO("banned %s for %s (rule %s, offence %u)%s", target.to_string().c_str(),
               format_duration(r.duration_seconds).c_str(), std::string(r.rule.view()).c_str(),
               r.offence, note);
    }
  };
  for (std::size_t c = 0; c < firewall_.size(); ++c) {
    const FirewallStep& step = steps_[c];
    if (step.request == kNone) {  // a narrower ban taken out for a wider one
      if (failed[c]) {
        metrics_.firewall_errors->inc();
      } else if (step.own_change != kNone && !covered_[step.own_change]) {
        // Its own (held) request below decides what the book says.
      } else if (!failed[step.owner] && step.narrower.expires <= expires_of(batch[steps_[step.owner].request], now)) {
        book_.erase(step.narrower.target);
        superseded_.push_back(step.narrower.target);
      } else {
        book_.set_in_firewall(step.narrower.target, false);  // back when the wider one ends
      }
      continue;
    }
    ActionRequest& r = batch[step.request];
    const std::string target = r.target.to_string();
    if (failed[c]) {
      metrics_.firewall_errors->inc();
      int err = 0;
      for (const auto& f : result.failures) {
        if (f.index == c) err = f.error;
      }
      const std::string why = !result.error.empty() ? result.error
                              : err != 0            ? std::string(std::strerror(err))
                                                    : std::string("refused");
      if (r.kind == ActionRequest::Kind::ban && !r.manual) {
        // The rules engine counts this ban as in force: it is held and retried (release_held)
        // rather than forgotten, and its store record stays.
        firewall_log_.log(LogLevel::warning, committed, "firewall change for %s failed: %s; retried",
                          target.c_str(), why.c_str());
        ActiveBan b{r.target, std::string(r.rule.view()), now, expires_of(r, now), r.offence};
        b.in_firewall = false;
        book_.put(b);
        metrics_.bans_for_rule(b.rule).inc();
        continue;
      }
      firewall_log_.log(LogLevel::warning, committed, "firewall change for %s failed: %s",
                        target.c_str(), why.c_str());
      if (r.kind == ActionRequest::Kind::ban) {
        // The operator is told; the store goes back to what is in force (an earlier ban of the
        // same target still is).
        if (const auto earlier = book_.find(r.target, now)) {
          restored_.push_back(state::BanRecord{earlier->target, earlier->rule,
                                               earlier->rule == "manual" ? state::BanSource::kManual
                                                                         : state::BanSource::kAuto,
                                               earlier->created, earlier->expires});
        } else {
          failed_bans.push_back(r.target);
        }
      }
      reply(r, "error the firewall refused the change for " + target + ": " + why + "\n");
      continue;
    }
    if (r.kind == ActionRequest::Kind::ban) {
      ActiveBan b{r.target, std::string(r.rule.view()), now, expires_of(r, now), r.offence};
      book_.put(b);
      metrics_.bans_for_rule(b.rule).inc();
      if (!r.manual) {
        metrics_.ban_latency->observe(static_cast<double>(committed - r.received) / 1e6);
      }
      log_ban(r.target, r, "");
      reply(r, "ok\nbanned " + target + " until " +
                   format_rfc3339(b.expires - b.expires % kMicrosPerSecond) + "\n");
    } else {
      const bool was_banned = book_.find(r.target, now).has_value();
      book_.erase(r.target);
      unban_targets_.push_back(r.target);
      metrics_.unbans->inc();
      LOG_INFO("unbanned %s", target.c_str());
      reply(r, was_banned ? "ok\nunbanned " + target + "\n"
                          : "ok\n" + target + " was not banned (removed from the firewall anyway)\n");
    }
  }
  for (const std::size_t i : book_only_unbans_) {
    ActionRequest& r = batch[i];
    book_.erase(r.target);
    unban_targets_.push_back(r.target);
    metrics_.unbans->inc();
    LOG_INFO("unbanned %s (it was held, not in the firewall)", r.target.to_string().c_str());
    reply(r, "ok\nunbanned " + r.target.to_string() + "\n");
  }
  for (const std::size_t i : held_requests_) {
    ActionRequest& r = batch[i];
    ActiveBan b{r.target, std::string(r.rule.view()), now, expires_of(r, now), r.offence};
    b.in_firewall = false;
    book_.put(b);
    metrics_.bans_for_rule(b.rule).inc();
    log_ban(r.target, r, "; inside a wider ban that ends sooner, it takes over then");
    reply(r, "ok\nbanned " + r.target.to_string() + " until " +
                 format_rfc3339(b.expires - b.expires % kMicrosPerSecond) +
                 " (inside a wider ban that ends sooner: it takes over then)\n");
  }
  if (banned > kBanLinesPerBatch) {
    LOG_INFO("... and %zu more bans in the same batch", banned - kBanLinesPerBatch);
  }
  // Failed manual bans must not be restored at the next start as if they had been in force.
  if (!failed_bans.empty()) {
    write(PendingWrite{false, {}, std::move(failed_bans), state::BanSource::kAuto, committed}, committed);
  }
  if (!restored_.empty()) write(PendingWrite{true, restored_, {}, state::BanSource::kAuto, committed}, committed);
  if (!superseded_.empty()) {
    write(PendingWrite{false, {}, superseded_, state::BanSource::kAuto, committed}, committed);
  }
  if (!unban_targets_.empty()) {
    write(PendingWrite{false, {}, unban_targets_, state::BanSource::kManual, committed}, committed);
  }
  if (may_flush) flush_writes(committed);
}

void ActionsWorker::release_held(UnixMicros now) {
  if (!book_.any_held()) return;
  firewall_.clear();
  release_kinds_.clear();
  std::vector<IpPrefix> going_in;  // this round's adds: cover for what lies inside them
  const auto listed = [](const std::vector<IpPrefix>& v, const IpPrefix& p) {
    return std::find(v.begin(), v.end(), p) != v.end();
  };
  // held() lists a prefix before everything inside it, so an outer held ban is decided first.
  for (const ActiveBan& h : book_.held(now)) {
    // One that ends within the lead itself stays out (it could hold a longer one inside it).
    if (h.expires <= now + kTakeOverLead) continue;
    const std::vector<ActiveBan> covers = book_.wider(h.target, now);
    // Cover is a wider element in the firewall for longer than the lead, or one going in now.
    // (A wider ban that is itself held, e.g. refused by the kernel, is no cover.)
    const bool still_held = std::any_of(covers.begin(), covers.end(), [&](const ActiveBan& w) {
      return (w.in_firewall && w.expires > now + kTakeOverLead) || listed(going_in, w.target);
    });
    if (still_held) continue;
    for (const ActiveBan& w : covers) {  // wider elements at their end: out a little early
      if (!w.in_firewall || listed(released_, w.target)) continue;
      released_.push_back(w.target);
      firewall_.push_back(actions::BanChange::remove(w.target));
      release_kinds_.push_back(ReleaseKind::wider_ending);
    }
    for (const ActiveBan& n : book_.inside(h.target, now)) {  // narrower elements: held now
      if (!n.in_firewall || listed(released_, n.target)) continue;
      released_.push_back(n.target);
      firewall_.push_back(actions::BanChange::remove(n.target));
      release_kinds_.push_back(ReleaseKind::narrower_out);
    }
    firewall_.push_back(actions::BanChange::until(h.target, h.expires, now));
    release_kinds_.push_back(ReleaseKind::going_in);
    going_in.push_back(h.target);
  }
  released_.clear();
  if (firewall_.empty()) return;
  const actions::BatchResult result = backend_.apply(firewall_, now);
  metrics_.firewall_batches->inc();
  std::vector<bool> failed(firewall_.size(), !result.error.empty() && result.applied == 0);
  for (const auto& f : result.failures) {
    if (f.index < failed.size()) failed[f.index] = true;
  }
  for (std::size_t c = 0; c < firewall_.size(); ++c) {
    const actions::BanChange& ch = firewall_[c];
    if (failed[c]) {
      metrics_.firewall_errors->inc();
      firewall_log_.log(LogLevel::warning, now, "firewall change for %s failed (%s); retried",
                        ch.target.to_string().c_str(),
                        ch.kind == actions::BanChange::Kind::kAdd ? "a held or failed ban going in"
                                                                  : "making room for one");
      continue;
    }
    switch (release_kinds_[c]) {
      case ReleaseKind::wider_ending:
        book_.erase(ch.target);  // its last seconds; its store row expires by itself
        break;
      case ReleaseKind::narrower_out:
        book_.set_in_firewall(ch.target, false);
        break;
      case ReleaseKind::going_in:
        book_.set_in_firewall(ch.target, true);
        // A held ban whose wider one ends, or a refused one that went in on a retry.
        LOG_INFO("%s: its ban is in the firewall now (%s left)", ch.target.to_string().c_str(),
                 format_duration(ch.timeout_seconds).c_str());
        break;
    }
  }
}

PipelineWorker::PipelineWorker(const SnapshotHolder& holder, PipelineMetrics& metrics, ActionQueue& queue)
    : holder_(holder), metrics_(metrics), queue_(queue),
      normalizer_(std::make_unique<normalize::Normalizer>()) {
  // The snapshot is taken at the first message (generation 0 is never published), so the
  // worker can exist before the rules are built.
  decisions_.reserve(16);
}

void PipelineWorker::on_message(std::string_view payload, ingest::Transport transport,
                                UnixMicros arrival) noexcept {
  metrics_.received[static_cast<std::size_t>(transport)]->inc();
  ingest::SyslogMessage msg;
  const ingest::SyslogParseError err = ingest::parse_syslog(payload, arrival, msg);
  if (err != ingest::SyslogParseError::ok) {
    metrics_.dropped_parse->inc();
    const auto e = static_cast<std::size_t>(err);
    if (e < kParseErrorCount && metrics_.parse_errors[e] != nullptr) metrics_.parse_errors[e]->inc();
    return;
  }
  if (holder_.generation() != generation_) refresh();
  normalize::AuthEvent event;
  const normalize::NormalizeResult r = normalizer_->normalize(msg, event);
  const auto source = static_cast<std::size_t>(r.source) % kSourceCount;
  if (r.outcome == normalize::NormalizeOutcome::unrecognized) {
    metrics_.unrecognized[source]->inc();
    return;
  }
  if (r.outcome != normalize::NormalizeOutcome::event) return;
  metrics_.events[source][static_cast<std::size_t>(event.kind) % kKindCount]->inc();
  if (event.kind == normalize::EventKind::auth_failure) {
    for (const IpPrefix& proxy : snapshot_->trusted_proxies) {
      if (proxy.contains(event.ip)) {
        metrics_.trusted_proxy_failures->inc(event.attempts);
        break;
      }
    }
  }
  decisions_.clear();
  for (const auto& unit : snapshot_->units) {
    if (!unit->wants(event)) continue;
    LockedEngine& le = unit->engine_for(event.ip);
    std::lock_guard lock(le.mu);
    le.engine->on_event(event, arrival, decisions_);
  }
  for (const rules::BanDecision& d : decisions_) {
    if (d.narrowed) {
      metrics_.narrowed->inc();
      narrowed_log_.log(LogLevel::warning, arrival,
                        "rule %.*s: banning %s alone, not its prefix, which holds a never_ban or "
                        "trusted_proxies entry",
                        static_cast<int>(d.rule.view().size()), d.rule.view().data(),
                        d.target.to_string().c_str());
    }
    ActionRequest a;
    a.kind = ActionRequest::Kind::ban;
    a.target = d.target;
    a.rule = d.rule;
    a.duration_seconds = d.duration_seconds;
    a.offence = d.offence;
    a.received = arrival;
    if (!queue_.push(std::move(a))) {
      metrics_.decisions_dropped->inc();
      queue_full_log_.log(LogLevel::warning, arrival,
                          "actions queue full: ban decision for rule %.*s dropped",
                          static_cast<int>(d.rule.view().size()), d.rule.view().data());
    }
  }
}

void PipelineWorker::refresh() {
  snapshot_ = holder_.get(generation_);
  normalizer_->set_patterns(snapshot_->patterns);
}

}  // namespace authwall::app
