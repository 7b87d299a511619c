#include "ingest/udp_listener.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace authwall::ingest {

namespace {

UnixMicros wall_clock_now() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// Preallocated once: the receive path allocates nothing.
struct UdpListener::Buffers {
  Buffers(std::size_t batch, std::size_t slot) : data(batch * slot), headers(batch), iovecs(batch),
                                                  addresses(batch), controls(batch) {
    for (std::size_t i = 0; i < batch; ++i) {
      iovecs[i].iov_base = data.data() + i * slot;
      iovecs[i].iov_len = slot;
    }
  }
  void reset() noexcept {
    for (std::size_t i = 0; i < headers.size(); ++i) {
      auto& h = headers[i].msg_hdr;
      h.msg_name = &addresses[i];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &iovecs[i];
      h.msg_iovlen = 1;
      h.msg_control = controls[i].bytes;
      h.msg_controllen = sizeof controls[i].bytes;
      h.msg_flags = 0;
      headers[i].msg_len = 0;
    }
  }
  struct Control {
    alignas(cmsghdr) char bytes[CMSG_SPACE(sizeof(std::uint32_t))];
  };
  std::vector<char> data;
  std::vector<mmsghdr> headers;
  std::vector<iovec> iovecs;
  std::vector<sockaddr_storage> addresses;
  std::vector<Control> controls;
};

UdpListener::UdpListener(boost::asio::io_context& io, MessageSink& sink, UdpListenerStats& stats,
                         UdpListenerOptions options)
    : socket_(io), sink_(sink), stats_(stats), options_(std::move(options)) {
  if (options_.batch == 0) options_.batch = 1;
  buffers_ = std::make_unique<Buffers>(options_.batch, options_.max_datagram);
}

UdpListener::~UdpListener() = default;

bool UdpListener::open(std::string& error) {
  boost::system::error_code ec;
  socket_.open(options_.endpoint.protocol(), ec);
  if (!ec && options_.endpoint.address().is_v6()) {
    // "[::]:514" should take IPv4 senders too; their addresses arrive IPv4-mapped.
    socket_.set_option(boost::asio::ip::v6_only(false), ec);
  }
  // No SO_REUSEADDR: on UDP it would let a second daemon bind the same port and silently take
  // a share of the datagrams.
  if (!ec) socket_.bind(options_.endpoint, ec);
  if (ec) {
    error = ec.message();
    socket_.close(ec);
    return false;
  }
  const int fd = socket_.native_handle();
  int size = options_.receive_buffer_bytes;
  // SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; without it, SO_RCVBUF is
  // silently capped at rmem_max. Either way we record what the kernel actually granted.
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  int granted = 0;
  socklen_t len = sizeof granted;
  if (::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &len) == 0) {
    stats_.receive_buffer_bytes.store(granted, std::memory_order_relaxed);
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  socket_.non_blocking(true, ec);
  return true;
}

void UdpListener::start() { wait(); }

boost::asio::ip::udp::endpoint UdpListener::local_endpoint() const {
  boost::system::error_code ec;
  return socket_.local_endpoint(ec);
}

void UdpListener::wait() {
  if (closed_) return;
  socket_.async_wait(boost::asio::socket_base::wait_read, [this](boost::system::error_code ec) {
    if (ec || closed_) return;
    receive_batches(options_.batches_per_wakeup);
    // Whether the queue is empty or the budget ran out, waiting again is right: a still
    // non-empty socket is reported ready at once, after the thread's other handlers ran.
    wait();
  });
}

bool UdpListener::receive_batches(std::size_t max_batches) {
  const int fd = socket_.native_handle();
  Buffers& b = *buffers_;
  for (std::size_t round = 0; round < max_batches; ++round) {
    b.reset();
    const int n = ::recvmmsg(fd, b.headers.data(), static_cast<unsigned>(b.headers.size()),
                             MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      // EAGAIN: drained. Other errors on a UDP socket (ICMP-reported ones) are transient.
      return n == 0 || errno == EAGAIN || errno == EWOULDBLOCK;
    }
    const UnixMicros arrival = wall_clock_now();
    stats_.receive_calls.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t delivered = 0;
    std::uint64_t bytes = 0;
    for (int i = 0; i < n; ++i) {
      const mmsghdr& m = b.headers[static_cast<std::size_t>(i)];
      for (cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr); c != nullptr;
           c = CMSG_NXTHDR(const_cast<msghdr*>(&m.msg_hdr), c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          std::uint32_t drops = 0;
          std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
          // Cumulative per socket; keep the largest seen (datagrams are not reordered, but
          // the value is only attached while it is non-zero).
          if (drops > stats_.kernel_drops.load(std::memory_order_relaxed)) {
            stats_.kernel_drops.store(drops, std::memory_order_relaxed);
          }
        }
      }
      IpAddress sender;
      if (!ip_from_sockaddr(reinterpret_cast<const sockaddr*>(&b.addresses[static_cast<std::size_t>(i)]),
                            sender) ||
          !options_.allowed_senders.allows(sender)) {
        stats_.dropped_sender.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        stats_.dropped_truncated.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (m.msg_len == 0) {
        stats_.dropped_empty.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      const char* data = static_cast<const char*>(b.iovecs[static_cast<std::size_t>(i)].iov_base);
      sink_.on_message(std::string_view(data, m.msg_len), Transport::udp, arrival);
      ++delivered;
      bytes += m.msg_len;
    }
    stats_.datagrams.fetch_add(delivered, std::memory_order_relaxed);
    stats_.bytes.fetch_add(bytes, std::memory_order_relaxed);
    if (static_cast<std::size_t>(n) < b.headers.size()) return true;
  }
  return false;
}

void UdpListener::drain_and_close() {
  if (closed_) return;
  // Everything the kernel accepted before we stopped is processed; the budget only guards
  // against a sender that keeps the queue full forever.
  receive_batches(1024);
  closed_ = true;
  boost::system::error_code ec;
  socket_.close(ec);
}

}  // namespace authwall::ingest
