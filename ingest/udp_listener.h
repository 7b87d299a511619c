#pragma once
// One UDP syslog socket, owned by one Asio worker thread.
//
// Receives in batches: after the socket reports readable, recvmmsg(MSG_DONTWAIT) is called
// until the queue is empty (bounded per wake-up so other sockets of the thread get a turn).
// The receive buffer is made large (SO_RCVBUFFORCE when privileged, else SO_RCVBUF up to the
// system maximum) so bursts wait in the kernel rather than being dropped, and SO_RXQ_OVFL
// makes the kernel report how many datagrams it dropped for lack of room.
//
// Thread-safety: open() before the worker runs; start()/drain_and_close() on the owning
// thread (post them); stats are atomics readable from any thread.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ingest/message_sink.h"

namespace authwall::ingest {

struct UdpListenerStats {
  std::atomic<std::uint64_t> datagrams{0};        // handed to the sink
  std::atomic<std::uint64_t> bytes{0};            // of those datagrams
  std::atomic<std::uint64_t> receive_calls{0};    // recvmmsg calls that returned data
  std::atomic<std::uint64_t> dropped_sender{0};   // source not in allowed_senders
  std::atomic<std::uint64_t> dropped_truncated{0};  // larger than the receive slot
  std::atomic<std::uint64_t> dropped_empty{0};    // zero-length datagrams
  // The kernel's own count of datagrams dropped because the receive buffer was full
  // (SO_RXQ_OVFL, cumulative since the socket was opened).
  std::atomic<std::uint64_t> kernel_drops{0};
  std::atomic<std::int64_t> receive_buffer_bytes{0};  // what the kernel granted
};

struct UdpListenerOptions {
  boost::asio::ip::udp::endpoint endpoint;
  SenderFilter allowed_senders;
  int receive_buffer_bytes = 32 * 1024 * 1024;
  std::size_t batch = 32;             // datagrams per recvmmsg
  std::size_t max_datagram = 65536;   // slot size; larger datagrams are counted and dropped
  std::size_t batches_per_wakeup = 64;
};

class UdpListener {
 public:
  UdpListener(boost::asio::io_context& io, MessageSink& sink, UdpListenerStats& stats,
              UdpListenerOptions options);
  ~UdpListener();
  UdpListener(const UdpListener&) = delete;
  UdpListener& operator=(const UdpListener&) = delete;

  // Binds the socket and sets its options. False with `error` filled on failure.
  bool open(std::string& error);
  void start();
  // Stops waiting, hands every datagram already queued in the kernel to the sink, closes.
  void drain_and_close();
  boost::asio::ip::udp::endpoint local_endpoint() const;

 private:
  // Receives until the socket is empty or the per-wakeup budget is used. True if empty.
  bool receive_batches(std::size_t max_batches);
  void wait();

  boost::asio::ip::udp::socket socket_;
  MessageSink& sink_;
  UdpListenerStats& stats_;
  UdpListenerOptions options_;
  struct Buffers;
  std::unique_ptr<Buffers> buffers_;
  bool closed_ = false;
};

}  // namespace authwall::ingest
