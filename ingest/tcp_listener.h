#pragma once
// One TCP syslog listen address: accepts connections and spreads them over the Asio worker
// threads; each connection is then owned by its worker, which reads, deframes (RFC 6587,
// ingest/tcp_deframer.h) and hands frames to that worker's sink inline.
//
// Reads are readiness-driven: when a socket is readable, the worker reads it non-blocking into
// the worker's one receive buffer (shared by all its connections, since each read is processed
// completely before the next), so an idle connection costs a socket and a deframer, not a
// buffer. Back-pressure is TCP's own: the next read happens only after the sink has processed
// the previous one, so a busy pipeline lets the sender's window fill and nothing is lost.
//
// Limits: at most `max_connections` at once (later ones are closed at accept and counted);
// senders outside allowed_senders are closed at accept and counted; a connection that sends
// nothing for `idle_timeout` is closed; frames longer than `max_frame` are dropped (LF framing)
// or end the connection (an octet count that cannot be trusted), counted by reason.
//
// Thread-safety: construct, open() and start() before the workers run; stop() on the accepting
// thread.
// Stats are atomics readable from any thread. Lifetime: the listener must outlive the runs of
// its io_contexts (handlers refer to it).
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ingest/message_sink.h"
#include "ingest/syslog_parser.h"

namespace authwall::ingest {

struct TcpListenerStats {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::int64_t> active{0};
  std::atomic<std::uint64_t> rejected_sender{0};   // closed at accept: not in allowed_senders
  std::atomic<std::uint64_t> rejected_limit{0};    // closed at accept: max_connections reached
  std::atomic<std::uint64_t> closed_idle{0};
  std::atomic<std::uint64_t> closed_count_too_large{0};  // octet count above max_frame
  std::atomic<std::uint64_t> closed_bad_count{0};        // octet count 0
  std::atomic<std::uint64_t> frames{0};            // handed to the sink
  std::atomic<std::uint64_t> bytes{0};             // read from sockets
  std::atomic<std::uint64_t> oversize_drops{0};    // LF-framed frames above max_frame, skipped
  std::atomic<std::uint64_t> truncated{0};         // counted frames cut off by a close
  std::atomic<std::uint64_t> ignored_bytes{0};     // after a framing failure
};

struct TcpListenerOptions {
  boost::asio::ip::tcp::endpoint endpoint;
  SenderFilter allowed_senders;
  std::size_t max_connections = 1024;
  std::size_t max_frame = kMaxSyslogMessageLength;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
};

// One per worker thread: its io_context, its sink, and its receive buffer.
class TcpWorker {
 public:
  TcpWorker(boost::asio::io_context& io, MessageSink& sink, std::size_t buffer_bytes = 256 * 1024)
      : io_(io), sink_(sink), buffer_(buffer_bytes) {}
  boost::asio::io_context& io() noexcept { return io_; }
  MessageSink& sink() noexcept { return sink_; }
  std::vector<char>& buffer() noexcept { return buffer_; }

 private:
  boost::asio::io_context& io_;
  MessageSink& sink_;
  std::vector<char> buffer_;
};

class TcpListener {
 public:
  // The acceptor runs on `accept_io`; connections go round-robin to `workers` (non-empty,
  // outliving the listener).
  TcpListener(boost::asio::io_context& accept_io, std::vector<TcpWorker*> workers,
              TcpListenerStats& stats, TcpListenerOptions options);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  bool open(std::string& error);
  void start();
  // Call on the accepting io_context's thread (or when it is not running). Takes the
  // connections still in the listen backlog, stops accepting, then on each connection's worker:
  // reads what the kernel already holds, hands it to the sink, delivers a final unterminated
  // line, closes. Returns at once; the drains run as the workers work through their queues.
  void stop();
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  std::size_t connection_count() const;

  class Connection;

 private:
  void accept();
  void remove(Connection* c);

  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<TcpWorker*> workers_;
  std::size_t next_worker_ = 0;
  TcpListenerStats& stats_;
  TcpListenerOptions options_;
  std::atomic<bool> stopped_{false};
  mutable std::mutex mu_;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections_;
  std::unique_ptr<boost::asio::steady_timer> retry_timer_;  // after accept errors (EMFILE)
};

}  // namespace authwall::ingest
