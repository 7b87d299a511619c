// UDP and TCP listeners on loopback: batching, framing, limits, sender filter, drain on stop.
// Time-dependent checks wait for a condition with a generous deadline instead of sleeping a
// fixed amount, so they pass on a slow, loaded machine.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ingest/tcp_listener.h"
#include "ingest/udp_listener.h"

namespace authwall::ingest {
namespace {

using namespace std::chrono_literals;

class CollectingSink : public MessageSink {
 public:
  void on_message(std::string_view payload, Transport transport, UnixMicros arrival) noexcept override {
    std::lock_guard lock(mu_);
    messages_.emplace_back(payload);
    last_transport_ = transport;
    last_arrival_ = arrival;
  }
  std::vector<std::string> messages() const {
    std::lock_guard lock(mu_);
    return messages_;
  }
  std::size_t count() const {
    std::lock_guard lock(mu_);
    return messages_.size();
  }
  UnixMicros last_arrival() const {
    std::lock_guard lock(mu_);
    return last_arrival_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> messages_;
  Transport last_transport_ = Transport::udp;
  UnixMicros last_arrival_ = 0;
};

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

std::vector<IpPrefix> prefixes(std::initializer_list<const char*> texts) {
  std::vector<IpPrefix> out;
  for (const char* t : texts) {
    IpPrefix p;
    EXPECT_TRUE(IpPrefix::parse(t, p)) << t;
    out.push_back(p);
  }
  return out;
}

// A blocking client socket bound to `source` (loopback has all of 127/8).
int client_socket(int type, const char* source) {
  const int fd = ::socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, source, &a.sin_addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

sockaddr_in to_sockaddr(unsigned short port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  return a;
}

struct IoThread {
  boost::asio::io_context io;
  std::thread thread;
  void start() {
    thread = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io);
      io.run();
    });
  }
  ~IoThread() {
    io.stop();
    if (thread.joinable()) thread.join();
  }
};

TEST(UdpListener, DeliversDatagramsAndDropsForeignSenders) {
  CollectingSink sink;
  UdpListenerStats stats;
  UdpListenerOptions options;
  options.endpoint = {boost::asio::ip::make_address("127.0.0.1"), 0};
  options.allowed_senders = SenderFilter(prefixes({"127.0.0.1/32"}));
  options.batch = 4;  // several recvmmsg rounds for the burst below
  IoThread t;
  UdpListener listener(t.io, sink, stats, options);
  std::string error;
  ASSERT_TRUE(listener.open(error)) << error;
  listener.start();
  t.start();
  const auto port = listener.local_endpoint().port();
  EXPECT_GT(stats.receive_buffer_bytes.load(), 0);

  const sockaddr_in dest = to_sockaddr(port);
  const int good = client_socket(SOCK_DGRAM, "127.0.0.1");
  const int bad = client_socket(SOCK_DGRAM, "127.0.0.2");
  for (int i = 0; i < 10; ++i) {
    const std::string msg = "<38>Nov 28 10:00:00 host app: message " + std::to_string(i);
    ASSERT_GT(::sendto(good, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&dest), sizeof dest), 0);
  }
  const std::string foreign = "<38>Nov 28 10:00:00 host app: from outside";
  ASSERT_GT(::sendto(bad, foreign.data(), foreign.size(), 0, reinterpret_cast<const sockaddr*>(&dest), sizeof dest), 0);
  ASSERT_GE(::sendto(good, "", 0, 0, reinterpret_cast<const sockaddr*>(&dest), sizeof dest), 0);

  ASSERT_TRUE(wait_for([&] { return stats.dropped_sender.load() == 1 && sink.count() == 10 && stats.dropped_empty.load() == 1; }));
  const auto msgs = sink.messages();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(msgs[static_cast<std::size_t>(i)], "<38>Nov 28 10:00:00 host app: message " + std::to_string(i));
  }
  EXPECT_EQ(stats.datagrams.load(), 10u);
  EXPECT_GT(stats.receive_calls.load(), 0u);
  // Arrival time is the wall clock at the edge.
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(sink.last_arrival(), now);
  EXPECT_GT(sink.last_arrival(), now - 60 * kMicrosPerSecond);
  ::close(good);
  ::close(bad);
}

TEST(UdpListener, DrainHandsOverQueuedDatagramsBeforeClosing) {
  CollectingSink sink;
  UdpListenerStats stats;
  UdpListenerOptions options;
  options.endpoint = {boost::asio::ip::make_address("127.0.0.1"), 0};
  options.allowed_senders = SenderFilter(prefixes({"127.0.0.0/8"}));
  boost::asio::io_context io;  // never run: only drain_and_close reads
  UdpListener listener(io, sink, stats, options);
  std::string error;
  ASSERT_TRUE(listener.open(error)) << error;
  const sockaddr_in dest = to_sockaddr(listener.local_endpoint().port());
  const int fd = client_socket(SOCK_DGRAM, "127.0.0.1");
  for (int i = 0; i < 100; ++i) {
    std::string msg = "m";
    msg += std::to_string(i);
    ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&dest), sizeof dest);
  }
  listener.drain_and_close();
  EXPECT_EQ(sink.count(), 100u);
  ::close(fd);
}

TEST(UdpListener, KernelDropCountArrivesWithTheNextDatagram) {
  CollectingSink sink;
  UdpListenerStats stats;
  UdpListenerOptions options;
  options.endpoint = {boost::asio::ip::make_address("127.0.0.1"), 0};
  options.allowed_senders = SenderFilter(prefixes({"127.0.0.0/8"}));
  options.receive_buffer_bytes = 4096;
  IoThread t;
  UdpListener listener(t.io, sink, stats, options);
  std::string error;
  ASSERT_TRUE(listener.open(error)) << error;
  const sockaddr_in dest = to_sockaddr(listener.local_endpoint().port());
  const int fd = client_socket(SOCK_DGRAM, "127.0.0.1");
  const std::string msg(200, 'x');
  // Burst before the listener reads anything: most of it is dropped by the kernel.
  for (int i = 0; i < 500; ++i) {
    ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&dest), sizeof dest);
  }
  listener.start();
  t.start();
  ASSERT_TRUE(wait_for([&] { return sink.count() > 0; }));
  std::this_thread::sleep_for(50ms);
  ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&dest), sizeof dest);
  ASSERT_TRUE(wait_for([&] { return stats.datagrams.load() + stats.kernel_drops.load() == 501; }))
      << "received " << stats.datagrams.load() << ", kernel drops " << stats.kernel_drops.load();
  EXPECT_GT(stats.kernel_drops.load(), 0u);
  ::close(fd);
}

struct TcpFixture : ::testing::Test {
  CollectingSink sink;
  TcpListenerStats stats;
  IoThread t;
  std::unique_ptr<TcpWorker> worker;
  std::unique_ptr<TcpListener> listener;
  unsigned short port = 0;

  void start(TcpListenerOptions options) {
    options.endpoint = {boost::asio::ip::make_address("127.0.0.1"), 0};
    options.allowed_senders = SenderFilter(prefixes({"127.0.0.1/32"}));
    worker = std::make_unique<TcpWorker>(t.io, sink, 4096);  // small: frames span reads
    listener = std::make_unique<TcpListener>(t.io, std::vector<TcpWorker*>{worker.get()}, stats, options);
    std::string error;
    ASSERT_TRUE(listener->open(error)) << error;
    listener->start();
    port = listener->local_endpoint().port();
    t.start();
  }
  void TearDown() override {
    if (listener) {
      // stop() runs on the accepting thread, like the daemon's signal handler.
      std::promise<void> done;
      boost::asio::post(t.io, [&] {
        listener->stop();
        done.set_value();
      });
      done.get_future().wait_for(10s);
    }
    std::this_thread::sleep_for(20ms);
    t.io.stop();
    if (t.thread.joinable()) t.thread.join();
  }
  int connect_from(const char* source) {
    const int fd = client_socket(SOCK_STREAM, source);
    const sockaddr_in dest = to_sockaddr(port);
    EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&dest), sizeof dest), 0);
    return fd;
  }
  static void send_all(int fd, std::string_view s) {
    while (!s.empty()) {
      const ssize_t w = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
      if (w <= 0) return;
      s.remove_prefix(static_cast<std::size_t>(w));
    }
  }
  // True when the peer has closed the connection (read returns 0 or an error).
  static bool peer_closed(int fd) {
    char c;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return ::recv(fd, &c, 1, 0) <= 0;
  }
};

TEST_F(TcpFixture, OctetCountedAndLineFramesAcrossReads) {
  start({});
  const int fd = connect_from("127.0.0.1");
  std::string big(3000, 'x');  // with the 4 KiB worker buffer, frames straddle reads
  std::string stream;
  for (int i = 0; i < 20; ++i) {
    const std::string msg = "<38>1 - h app - - - " + big + std::to_string(i);
    stream += std::to_string(msg.size()) + " " + msg;
    stream += "<38>Nov 28 10:00:00 host app: line " + std::to_string(i) + "\n";
  }
  send_all(fd, stream);
  ASSERT_TRUE(wait_for([&] { return sink.count() == 40; }));
  const auto msgs = sink.messages();
  EXPECT_EQ(msgs[0], "<38>1 - h app - - - " + big + "0");
  EXPECT_EQ(msgs[1], "<38>Nov 28 10:00:00 host app: line 0");
  EXPECT_EQ(msgs[39], "<38>Nov 28 10:00:00 host app: line 19");
  EXPECT_EQ(stats.frames.load(), 40u);
  EXPECT_EQ(stats.bytes.load(), stream.size());
  EXPECT_EQ(stats.active.load(), 1);
  ::close(fd);
  ASSERT_TRUE(wait_for([&] { return stats.active.load() == 0; }));
}

TEST_F(TcpFixture, LyingCountClosesConnectionAndIsCounted) {
  TcpListenerOptions o;
  o.max_frame = 1024;
  start(o);
  const int fd = connect_from("127.0.0.1");
  send_all(fd, "5 hello99999999 <38>after the lie\n");
  EXPECT_TRUE(peer_closed(fd));
  ASSERT_TRUE(wait_for([&] { return stats.closed_count_too_large.load() == 1; }));
  EXPECT_EQ(sink.messages(), std::vector<std::string>{"hello"});
  ::close(fd);
  // The listener still serves others.
  const int fd2 = connect_from("127.0.0.1");
  send_all(fd2, "still here\n");
  ASSERT_TRUE(wait_for([&] { return sink.count() == 2; }));
  ::close(fd2);
}

TEST_F(TcpFixture, OversizeLineIsSkippedAndStreamContinues) {
  TcpListenerOptions o;
  o.max_frame = 1024;
  start(o);
  const int fd = connect_from("127.0.0.1");
  send_all(fd, std::string(5000, 'A') + "\nnext line\n");
  ASSERT_TRUE(wait_for([&] { return sink.count() == 1; }));
  EXPECT_EQ(sink.messages()[0], "next line");
  EXPECT_EQ(stats.oversize_drops.load(), 1u);
  ::close(fd);
}

TEST_F(TcpFixture, ForeignSenderAndConnectionLimit) {
  TcpListenerOptions o;
  o.max_connections = 2;
  start(o);
  const int foreign = connect_from("127.0.0.2");
  EXPECT_TRUE(peer_closed(foreign));
  EXPECT_EQ(stats.rejected_sender.load(), 1u);
  const int a = connect_from("127.0.0.1");
  const int b = connect_from("127.0.0.1");
  ASSERT_TRUE(wait_for([&] { return stats.active.load() == 2; }));
  const int c = connect_from("127.0.0.1");
  EXPECT_TRUE(peer_closed(c));
  EXPECT_EQ(stats.rejected_limit.load(), 1u);
  send_all(a, "from a\n");
  ASSERT_TRUE(wait_for([&] { return sink.count() == 1; }));
  for (int fd : {foreign, a, b, c}) ::close(fd);
}

TEST_F(TcpFixture, IdleConnectionsAreClosed) {
  TcpListenerOptions o;
  o.idle_timeout = 600ms;
  start(o);
  const int idle = connect_from("127.0.0.1");
  const int slow = connect_from("127.0.0.1");
  // The idle one's last line has no LF: closing it for idleness delivers it, as EOF would.
  send_all(idle, "unterminated");
  // A slow sender that keeps trickling is not idle: twice the timeout in all, a byte every
  // 100 ms (a 500 ms margin for a stalled machine).
  for (int i = 0; i < 12; ++i) {
    send_all(slow, "x");
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(peer_closed(idle));
  ASSERT_TRUE(wait_for([&] { return stats.closed_idle.load() >= 1; }));
  send_all(slow, "yz\n");
  ASSERT_TRUE(wait_for([&] { return sink.count() == 2; }));
  EXPECT_EQ(sink.messages()[0], "unterminated");
  EXPECT_EQ(sink.messages()[1], "xxxxxxxxxxxxyz");
  ::close(idle);
  ::close(slow);
}

TEST_F(TcpFixture, DataWaitingForABusyWorkerIsNotIdle) {
  TcpListenerOptions o;
  o.idle_timeout = 200ms;
  start(o);
  const int fd = connect_from("127.0.0.1");
  ASSERT_TRUE(wait_for([&] { return stats.active.load() == 1; }));
  // The worker is busy past the timeout (gate 1), notices the expired timer between two
  // handlers, and is busy again (gate 2) when a message arrives: the timer's handler then runs
  // before the read. The message is read and the connection stays open.
  std::mutex gate1, gate2;
  gate1.lock();
  gate2.lock();
  boost::asio::post(t.io, [&] { std::lock_guard g(gate1); });
  boost::asio::post(t.io, [&] { std::lock_guard g(gate2); });
  std::this_thread::sleep_for(400ms);
  gate1.unlock();
  std::this_thread::sleep_for(50ms);
  send_all(fd, "waiting\n");
  std::this_thread::sleep_for(50ms);
  gate2.unlock();
  // Read when the message is seen (the timer, re-armed by the read, may close it as idle
  // 200 ms later, rightly).
  std::uint64_t idle_closes_at_delivery = 1;
  ASSERT_TRUE(wait_for([&] {
    if (sink.count() != 1) return false;
    idle_closes_at_delivery = stats.closed_idle.load();
    return true;
  }));
  EXPECT_EQ(idle_closes_at_delivery, 0u);
  ::close(fd);
}

TEST_F(TcpFixture, AResetConnectionStillDeliversItsUnterminatedLine) {
  start({});
  const int fd = connect_from("127.0.0.1");
  send_all(fd, "sent before the reset");
  ASSERT_TRUE(wait_for([&] { return stats.bytes.load() == 21; }));
  const linger abort_on_close{1, 0};  // close() sends RST
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close), 0);
  ::close(fd);
  ASSERT_TRUE(wait_for([&] { return sink.count() == 1; }));
  EXPECT_EQ(sink.messages()[0], "sent before the reset");
  ASSERT_TRUE(wait_for([&] { return stats.active.load() == 0; }));
}

TEST_F(TcpFixture, StopDrainsReceivedDataIncludingAnUnterminatedLine) {
  start({});
  const int fd = connect_from("127.0.0.1");
  ASSERT_TRUE(wait_for([&] { return stats.active.load() == 1; }));
  // Block the worker so the data sits in the kernel when stop() is called.
  std::mutex gate;
  gate.lock();
  boost::asio::post(t.io, [&] { std::lock_guard g(gate); });
  send_all(fd, "first\nsecond without newline");
  std::this_thread::sleep_for(50ms);
  boost::asio::post(t.io, [&] { listener->stop(); });
  gate.unlock();
  ASSERT_TRUE(wait_for([&] { return sink.count() == 2; }));
  EXPECT_EQ(sink.messages()[1], "second without newline");
  EXPECT_TRUE(peer_closed(fd));
  ::close(fd);
}

}  // namespace
}  // namespace authwall::ingest
