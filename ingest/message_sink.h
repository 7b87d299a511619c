#pragma once
// What the network listeners hand their messages to, and the sender filter they share.
//
// A listener calls its sink on the thread that owns the socket, once per datagram or TCP
// frame, with the bytes (valid only during the call) and the arrival time: the wall clock read
// once per receive batch at the edge. The sink does parse + normalize + rules inline, so a
// slow sink slows the TCP reads (back-pressure through TCP's own window, nothing lost) and
// lets the UDP socket's kernel buffer fill (overflow counted via SO_RXQ_OVFL).
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "common/civil_time.h"
#include "common/ip_address.h"

namespace authwall::ingest {

enum class Transport : std::uint8_t { udp, tcp };
inline std::string_view to_string(Transport t) noexcept { return t == Transport::udp ? "udp" : "tcp"; }

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  virtual void on_message(std::string_view payload, Transport transport,
                          UnixMicros arrival) noexcept = 0;
};

// allowed_senders: an empty list allows nobody (the configuration's default is loopback).
class SenderFilter {
 public:
  SenderFilter() = default;
  explicit SenderFilter(std::vector<IpPrefix> allowed) : allowed_(std::move(allowed)) {}
  bool allows(const IpAddress& addr) const noexcept {
    for (const auto& p : allowed_) {
      if (p.contains(addr)) return true;
    }
    return false;
  }

 private:
  std::vector<IpPrefix> allowed_;
};

// The peer address of a socket as our IpAddress (IPv4-mapped IPv6 becomes IPv4, so a
// dual-stack socket checks "127.0.0.1" against 127.0.0.0/8). False for other families.
inline bool ip_from_sockaddr(const sockaddr* sa, IpAddress& out) noexcept {
  out = IpAddress{};
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    std::memcpy(out.bytes.data(), &in->sin_addr, 4);
    out.is_v4 = true;
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    const auto* b = reinterpret_cast<const std::uint8_t*>(&in6->sin6_addr);
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, kMapped, 12) == 0) {
      std::memcpy(out.bytes.data(), b + 12, 4);
      out.is_v4 = true;
    } else {
      std::memcpy(out.bytes.data(), b, 16);
      out.is_v4 = false;
    }
    return true;
  }
  return false;
}

}  // namespace authwall::ingest
