#pragma once
// `authwall serve`: the live pipeline (PRODUCT.md "The pipeline").
//
// Threads
//   - I/O workers (a few, one io_context each): own their UDP sockets and TCP connections and run
//     parse -> normalize -> rules inline for every message, with one Normalizer per worker.
//   - Rule state is sharded: every rule has its own engines, one per shard, each behind its own
//     mutex (one thread inside a RuleEngine at a time). An event goes to the shard picked by the
//     hash of its client address masked to the rule's prefix, so one key always meets one
//     engine. Rules keyed by user alone are not sharded (one engine: a user is tried from many
//     addresses). Keeping each rule in its own engines is also what lets SIGHUP keep the windows
//     of every rule whose definition did not change.
//   - One actions thread: ban decisions go through one bounded queue; the thread drains
//     everything queued, commits it to the firewall backend as one batch, then updates the ban
//     book, the ban store and the metrics, and writes the offence history the rules engines
//     noted in memory. It runs at nice -10 when allowed (app/thread_priority.h).
//   - The control thread (main): signals, HTTP (metrics.listen), the control socket, TCP
//     accepts, housekeeping, and the state database's checkpoints (the syncs to disk).
//
// Back-pressure: processing is inline, so a TCP connection is read again only after its data
// went through the rules (the sender's window fills; nothing is lost) and a UDP socket's kernel
// buffer absorbs bursts (its overflow is counted). Only the ban queue can be full: the decision
// is then dropped and counted (the network path never blocks on the firewall).
#include <cstddef>
#include <string>

namespace authwall::app {

struct ServeOptions {
  std::string config_path;
  bool dry_run = false;        // force the dry-run firewall backend
  std::size_t io_threads = 0;  // 0: two (this machine class has two cores)
  std::size_t shards = 0;      // rule shards per rule; 0: 4
};

// Runs until SIGTERM/SIGINT. Returns the process exit code (0 after a clean stop, 1 on a
// runtime failure at start-up, 2 for an invalid configuration).
int run_daemon(const ServeOptions& options);

}  // namespace authwall::app
