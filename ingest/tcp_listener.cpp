#include "ingest/tcp_listener.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>

#include "ingest/tcp_deframer.h"

namespace authwall::ingest {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

UnixMicros wall_clock_now() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

IpAddress ip_from_asio(const asio::ip::address& a) noexcept {
  IpAddress out;
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    for (std::size_t i = 0; i < 4; ++i) out.bytes[i] = b[i];
    out.is_v4 = true;
    return out;
  }
  const auto v6 = a.to_v6();
  const auto b = v6.to_bytes();
  if (v6.is_v4_mapped()) {
    for (std::size_t i = 0; i < 4; ++i) out.bytes[i] = b[12 + i];
    out.is_v4 = true;
  } else {
    for (std::size_t i = 0; i < 16; ++i) out.bytes[i] = b[i];
    out.is_v4 = false;
  }
  return out;
}

// Reads per readiness wake-up before yielding to the worker's other sockets.
constexpr int kReadsPerWakeup = 16;
// On shutdown a connection's remaining kernel data is read up to this much.
constexpr std::size_t kMaxDrainBytes = 64 * 1024 * 1024;

}  // namespace

class TcpListener::Connection : public std::enable_shared_from_this<TcpListener::Connection> {
 public:
  Connection(TcpListener& listener, TcpWorker& worker, tcp::socket socket)
      : listener_(listener), worker_(worker), socket_(std::move(socket)), timer_(worker.io()),
        deframer_(listener.options_.max_frame) {}

  void start() {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) return close();
    last_activity_ = std::chrono::steady_clock::now();
    arm_timer(listener_.options_.idle_timeout);
    wait_readable();
  }

  asio::any_io_executor worker_executor() { return socket_.get_executor(); }

  // Runs on the worker: everything the kernel already holds is processed, then the close.
  void drain_and_close() {
    if (closed_) return;
    std::size_t total = 0;
    while (!closed_ && total < kMaxDrainBytes) {
      const ssize_t n = read_some();
      if (n > 0) {
        total += static_cast<std::size_t>(n);
        continue;
      }
      if (n == 0) return end_of_stream();
      break;  // would block (or error): nothing more was received
    }
    if (!closed_) end_of_stream();
  }

 private:
  void wait_readable() {
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->closed_) return;
      self->on_readable();
    });
  }

  void on_readable() {
    for (int i = 0; i < kReadsPerWakeup && !closed_; ++i) {
      const ssize_t n = read_some();
      if (n > 0) continue;
      if (n == 0) return end_of_stream();
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return end_of_stream();  // ECONNRESET and friends: what was received still counts
    }
    if (!closed_) wait_readable();
  }

  // One non-blocking read into the worker's buffer, processed at once. Returns read()'s result
  // (errno set on -1).
  ssize_t read_some() {
    std::vector<char>& buf = worker_.buffer();
    ssize_t n;
    do {
      n = ::read(socket_.native_handle(), buf.data(), buf.size());
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return n;
    last_activity_ = std::chrono::steady_clock::now();
    const UnixMicros arrival = wall_clock_now();
    auto& stats = listener_.stats_;
    stats.bytes.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    std::uint64_t frames = 0;
    MessageSink& sink = worker_.sink();
    const bool ok = deframer_.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)),
                                   [&](std::string_view frame) {
                                     sink.on_message(frame, Transport::tcp, arrival);
                                     ++frames;
                                   });
    stats.frames.fetch_add(frames, std::memory_order_relaxed);
    sync_counters();
    if (!ok) {
      if (deframer_.error() == TcpDeframerError::count_too_large) {
        stats.closed_count_too_large.fetch_add(1, std::memory_order_relaxed);
      } else {
        stats.closed_bad_count.fetch_add(1, std::memory_order_relaxed);
      }
      close();
      return -1;
    }
    return n;
  }

  void end_of_stream() {
    const UnixMicros arrival = wall_clock_now();
    std::uint64_t frames = 0;
    MessageSink& sink = worker_.sink();
    deframer_.finish([&](std::string_view frame) {
      sink.on_message(frame, Transport::tcp, arrival);
      ++frames;
    });
    listener_.stats_.frames.fetch_add(frames, std::memory_order_relaxed);
    sync_counters();
    close();
  }

  // The deframer keeps plain counters; the listener's atomics get the differences.
  void sync_counters() {
    const TcpDeframerCounters& c = deframer_.counters();
    auto& stats = listener_.stats_;
    if (c.oversize_drops != synced_.oversize_drops) {
      stats.oversize_drops.fetch_add(c.oversize_drops - synced_.oversize_drops, std::memory_order_relaxed);
    }
    if (c.truncated != synced_.truncated) {
      stats.truncated.fetch_add(c.truncated - synced_.truncated, std::memory_order_relaxed);
    }
    if (c.ignored_bytes != synced_.ignored_bytes) {
      stats.ignored_bytes.fetch_add(c.ignored_bytes - synced_.ignored_bytes, std::memory_order_relaxed);
    }
    synced_ = c;
  }

  void arm_timer(std::chrono::steady_clock::duration after) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->closed_) return;
      // The timer is not pushed back on every read (that would cost a timer operation per
      // read); it checks the last activity when it fires and re-arms for the rest.
      const auto timeout = self->listener_.options_.idle_timeout;
      // Bytes waiting in the kernel are activity the busy worker has not read yet (its timer
      // can fire before the readiness handler): such a connection is not idle.
      boost::system::error_code avail_ec;
      if (self->socket_.available(avail_ec) > 0 && !avail_ec) {
        self->last_activity_ = std::chrono::steady_clock::now();
      }
      const auto idle = std::chrono::steady_clock::now() - self->last_activity_;
      if (idle >= timeout) {
        self->listener_.stats_.closed_idle.fetch_add(1, std::memory_order_relaxed);
        return self->end_of_stream();  // an unterminated last line is delivered, as at EOF
      }
      self->arm_timer(timeout - idle);
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    auto self = shared_from_this();  // remove() drops the listener's reference
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    listener_.remove(this);
  }

  TcpListener& listener_;
  TcpWorker& worker_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  TcpDeframer deframer_;
  TcpDeframerCounters synced_;
  std::chrono::steady_clock::time_point last_activity_;
  bool closed_ = false;
};

TcpListener::TcpListener(asio::io_context& accept_io, std::vector<TcpWorker*> workers,
                         TcpListenerStats& stats, TcpListenerOptions options)
    : acceptor_(accept_io), workers_(std::move(workers)), stats_(stats), options_(std::move(options)),
      retry_timer_(std::make_unique<asio::steady_timer>(accept_io)) {}

TcpListener::~TcpListener() = default;

bool TcpListener::open(std::string& error) {
  boost::system::error_code ec;
  acceptor_.open(options_.endpoint.protocol(), ec);
  if (!ec && options_.endpoint.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(false), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(options_.endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = ec.message();
    acceptor_.close(ec);
    return false;
  }
  return true;
}

void TcpListener::start() { accept(); }

tcp::endpoint TcpListener::local_endpoint() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec);
}

std::size_t TcpListener::connection_count() const {
  std::lock_guard lock(mu_);
  return connections_.size();
}

void TcpListener::accept() {
  if (stopped_.load()) return;
  TcpWorker& worker = *workers_[next_worker_];
  acceptor_.async_accept(worker.io(), [this, &worker](boost::system::error_code ec, tcp::socket s) {
    if (stopped_.load()) {
      boost::system::error_code ignored;
      s.close(ignored);
      return;
    }
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // EMFILE/ENFILE/ENOBUFS: retry shortly instead of spinning on the same error.
      retry_timer_->expires_after(std::chrono::milliseconds(100));
      retry_timer_->async_wait([this](boost::system::error_code tec) {
        if (!tec) accept();
      });
      return;
    }
    boost::system::error_code rec;
    const auto peer = s.remote_endpoint(rec);
    boost::system::error_code ignored;
    if (rec || !options_.allowed_senders.allows(ip_from_asio(peer.address()))) {
      stats_.rejected_sender.fetch_add(1, std::memory_order_relaxed);
      s.close(ignored);
    } else if (static_cast<std::size_t>(stats_.active.load()) >= options_.max_connections) {
      stats_.rejected_limit.fetch_add(1, std::memory_order_relaxed);
      s.close(ignored);
    } else {
      auto c = std::make_shared<Connection>(*this, worker, std::move(s));
      {
        std::lock_guard lock(mu_);
        connections_.emplace(c.get(), c);
      }
      stats_.accepted.fetch_add(1, std::memory_order_relaxed);
      stats_.active.fetch_add(1, std::memory_order_relaxed);
      asio::post(worker.io(), [c] { c->start(); });
      next_worker_ = (next_worker_ + 1) % workers_.size();
    }
    accept();
  });
}

void TcpListener::remove(Connection* c) {
  std::shared_ptr<Connection> keep;  // destroyed outside the lock
  {
    std::lock_guard lock(mu_);
    auto it = connections_.find(c);
    if (it == connections_.end()) return;
    keep = std::move(it->second);
    connections_.erase(it);
  }
  stats_.active.fetch_sub(1, std::memory_order_relaxed);
}

void TcpListener::stop() {
  if (stopped_.exchange(true)) return;
  boost::system::error_code ec;
  // Connections still in the listen backlog were accepted by the kernel and may carry data
  // already: take them too, so everything sent before the stop is drained.
  acceptor_.non_blocking(true, ec);
  for (std::size_t i = 0; !ec && i < 4096; ++i) {
    TcpWorker& worker = *workers_[next_worker_];
    tcp::socket s(worker.io());
    acceptor_.accept(s, ec);
    if (ec) break;
    boost::system::error_code rec;
    const auto peer = s.remote_endpoint(rec);
    if (rec || !options_.allowed_senders.allows(ip_from_asio(peer.address()))) {
      stats_.rejected_sender.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    auto c = std::make_shared<Connection>(*this, worker, std::move(s));
    {
      std::lock_guard lock(mu_);
      connections_.emplace(c.get(), c);
    }
    stats_.accepted.fetch_add(1, std::memory_order_relaxed);
    stats_.active.fetch_add(1, std::memory_order_relaxed);
    asio::post(worker.io(), [c] { c->start(); });
    next_worker_ = (next_worker_ + 1) % workers_.size();
  }
  acceptor_.close(ec);
  retry_timer_->cancel();
  std::vector<std::shared_ptr<Connection>> snapshot;
  {
    std::lock_guard lock(mu_);
    for (auto& [ptr, c] : connections_) snapshot.push_back(c);
  }
  for (auto& c : snapshot) {
    // Each connection is drained by the worker that owns it, never concurrently with its reads.
    asio::post(c->worker_executor(), [c] { c->drain_and_close(); });
  }
}

}  // namespace authwall::ingest
