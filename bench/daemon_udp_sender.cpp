// UDP load sender for bench/daemon_tcp_throughput.sh (compiled by that script; not part of the
// build). Reads newline-separated datagrams (written by daemon_load_sender.py --write-block),
// sends COUNT of them round-robin from one socket with sendmmsg, as fast as one core goes or
// at RATE per second. Bounded by COUNT and SECONDS.
//   daemon_udp_sender FILE PORT COUNT RATE SECONDS
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s FILE PORT COUNT RATE SECONDS\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1]);
  std::vector<std::string> grams;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) grams.push_back(line);
  }
  if (grams.empty()) return 2;
  const long count = std::atol(argv[3]);
  const long rate = std::atol(argv[4]);
  const double seconds = std::atof(argv[5]);

  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in dest{};
  dest.sin_family = AF_INET;
  dest.sin_port = htons(static_cast<unsigned short>(std::atoi(argv[2])));
  ::inet_pton(AF_INET, "127.0.0.1", &dest.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dest), sizeof dest) != 0) return 1;

  constexpr std::size_t kBatch = 64;
  std::vector<mmsghdr> msgs(kBatch);
  std::vector<iovec> iov(kBatch);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  long sent = 0;
  std::size_t next = 0;
  while (sent < count && std::chrono::steady_clock::now() < deadline) {
    const std::size_t n = static_cast<std::size_t>(std::min<long>(kBatch, count - sent));
    for (std::size_t i = 0; i < n; ++i) {
      const std::string& g = grams[next];
      next = (next + 1) % grams.size();
      iov[i].iov_base = const_cast<char*>(g.data());
      iov[i].iov_len = g.size();
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int r = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (r < 0) {
      // ECONNREFUSED from an earlier ICMP: the receiver is not there (yet); keep going.
      continue;
    }
    sent += r;
    if (rate > 0) {
      const auto due = start + std::chrono::duration<double>(static_cast<double>(sent) / static_cast<double>(rate));
      std::this_thread::sleep_until(due);
    }
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sent %ld datagrams in %.3f s (%.0f/s)\n", sent, elapsed, static_cast<double>(sent) / elapsed);
  ::close(fd);
  return 0;
}
