// Real packets against the real kernel: a banned source cannot reach a protected port, another
// source can, and a port outside the list stays open for everyone (fail2ban's "one jail, one
// port" failure). One network namespace; the addresses live on its loopback, whose traffic
// passes the input hook like traffic from outside.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "actions/nft_backend.h"
#include "tests/actions/netns_fixture.h"

namespace authwall::actions {
namespace {

using authwall::testing::run_in_netns;

IpPrefix P(const char* text) {
  IpPrefix p;
  EXPECT_TRUE(IpPrefix::parse(text, p)) << text;
  return p;
}

// A socket is created in the caller's current network namespace and stays there; -1 for
// `netns` means "this one". Used to place listeners and clients in other namespaces.
int socket_in(int netns, int domain, int type) {
  if (netns < 0) return socket(domain, type, 0);
  const int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0 || setns(netns, CLONE_NEWNET) != 0) return -1;
  const int fd = socket(domain, type, 0);
  if (setns(self, CLONE_NEWNET) != 0) std::abort();  // never continue in the wrong namespace
  close(self);
  return fd;
}

// A dual-stack listener; the kernel completes handshakes into the backlog without accept().
int listen_on(std::uint16_t port, int netns = -1) {
  const int fd = socket_in(netns, AF_INET6, SOCK_STREAM);
  const int zero = 0, one = 1;
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_any;
  a.sin6_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 64) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Whether a TCP connection from `src` to `dst`:`port` is established within `timeout_ms`.
bool connects(const char* src, const char* dst, std::uint16_t port, int timeout_ms,
              int netns = -1) {
  const bool v6 = std::strchr(dst, ':') != nullptr;
  sockaddr_storage s{}, d{};
  socklen_t len;
  if (v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&s);
    auto* d6 = reinterpret_cast<sockaddr_in6*>(&d);
    s6->sin6_family = d6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, src, &s6->sin6_addr);
    inet_pton(AF_INET6, dst, &d6->sin6_addr);
    d6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&s);
    auto* d4 = reinterpret_cast<sockaddr_in*>(&d);
    s4->sin_family = d4->sin_family = AF_INET;
    inet_pton(AF_INET, src, &s4->sin_addr);
    inet_pton(AF_INET, dst, &d4->sin_addr);
    d4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  }
  const int fd = socket_in(netns, v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  if (fd < 0) return false;
  bool ok = false;
  if (bind(fd, reinterpret_cast<sockaddr*>(&s), len) == 0) {
    const int rc = connect(fd, reinterpret_cast<sockaddr*>(&d), len);
    if (rc == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, timeout_ms) == 1) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        ok = err == 0;
      }
    }
  }
  close(fd);
  return ok;
}

TEST(NftTraffic, BannedSourceIsDroppedOnProtectedPortsOnly) {
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    for (const char* cmd : {"ip addr add 203.0.113.1/32 dev lo",     // the mail server
                            "ip addr add 198.51.100.20/32 dev lo",   // the attacker
                            "ip addr add 192.0.2.10/32 dev lo",      // a user
                            "ip addr add 2001:db8:ff::1/128 dev lo nodad",
                            "ip addr add 2001:db8:bad::20/128 dev lo nodad",
                            "ip addr add 2001:db8:600d::10/128 dev lo nodad"}) {
      ASSERT_EQ(std::system(cmd), 0) << cmd;
    }
    const int l587 = listen_on(587), l2525 = listen_on(2525);
    ASSERT_GE(l587, 0);
    ASSERT_GE(l2525, 0);
    // Before any ban everyone gets in.
    EXPECT_TRUE(connects("198.51.100.20", "203.0.113.1", 587, 5000));
    EXPECT_TRUE(connects("2001:db8:bad::20", "2001:db8:ff::1", 587, 5000));

    NftLayout layout;
    layout.ports = {25, 465, 587, 993};
    NftBanBackend b(layout);
    const PrepareResult p = b.prepare();
    ASSERT_TRUE(p.ok) << p.error;
    // The attacker's address, and the /64 its IPv6 address rotates in.
    ASSERT_TRUE(b.apply(std::vector<BanChange>{BanChange::add(P("198.51.100.20"), 600),
                                               BanChange::add(P("2001:db8:bad::/64"), 600)},
                        0)
                    .ok());
    // A dropped SYN is never answered: the connect is still pending after the wait.
    EXPECT_FALSE(connects("198.51.100.20", "203.0.113.1", 587, 1500));
    EXPECT_FALSE(connects("2001:db8:bad::20", "2001:db8:ff::1", 587, 1500));
    EXPECT_TRUE(connects("192.0.2.10", "203.0.113.1", 587, 5000));
    EXPECT_TRUE(connects("2001:db8:600d::10", "2001:db8:ff::1", 587, 5000));
    // A port outside the protected list stays open, even for the banned source.
    EXPECT_TRUE(connects("198.51.100.20", "203.0.113.1", 2525, 5000));
    EXPECT_TRUE(connects("2001:db8:bad::20", "2001:db8:ff::1", 2525, 5000));
    // The rule counted the drops.
    const std::string listing = authwall::testing::run_command("nft list chain inet authwall input");
    EXPECT_NE(listing.find("@banned_ipv4"), std::string::npos) << listing;
    EXPECT_EQ(listing.find("packets 0 bytes"), std::string::npos)
        << "both rules should have counted drops:\n" << listing;

    // Unban: the address gets in again at once.
    ASSERT_TRUE(b.apply(std::vector<BanChange>{BanChange::remove(P("198.51.100.20")),
                                               BanChange::remove(P("2001:db8:bad::/64"))},
                        0)
                    .ok());
    EXPECT_TRUE(connects("198.51.100.20", "203.0.113.1", 587, 5000));
    EXPECT_TRUE(connects("2001:db8:bad::20", "2001:db8:ff::1", 587, 5000));
    close(l587);
    close(l2525);
  });
}

// A process parked in its own new network namespace (dies with its parent); returns its pid.
pid_t spawn_netns() {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char ok = unshare(CLONE_NEWNET) == 0 ? 1 : 0;
    if (write(ready[1], &ok, 1) != 1) _exit(1);
    for (;;) pause();
  }
  char ok = 0;
  if (pid < 0 || read(ready[0], &ok, 1) != 1 || ok != 1) return -1;
  close(ready[0]);
  close(ready[1]);
  return pid;
}

int open_netns(pid_t pid) {
  return open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
}

TEST(NftTraffic, ForwardHookProtectsAServerBehindThisHost) {
  // client netns --veth-- this netns (a router, like a Docker host) --veth-- server netns.
  // Published container ports are forwarded traffic: the input hook alone would miss them.
  AUTHWALL_REQUIRE_ROOT();
  run_in_netns([] {
    const pid_t client = spawn_netns(), server = spawn_netns();
    ASSERT_GT(client, 0);
    ASSERT_GT(server, 0);
    const std::string c = std::to_string(client), s = std::to_string(server);
    const std::string setup[] = {
        "sysctl -qw net.ipv4.ip_forward=1",
        "ip link add rc type veth peer name vc",
        "ip link set vc netns " + c,
        "ip link add rs type veth peer name vs",
        "ip link set vs netns " + s,
        "ip addr add 198.51.100.1/24 dev rc && ip link set rc up",
        "ip addr add 203.0.113.1/24 dev rs && ip link set rs up",
        "nsenter -t " + c + " -n sh -c 'ip link set lo up && ip link set vc up && "
            "ip addr add 198.51.100.20/24 dev vc && ip addr add 198.51.100.21/24 dev vc && "
            "ip route add default via 198.51.100.1'",
        "nsenter -t " + s + " -n sh -c 'ip link set lo up && ip link set vs up && "
            "ip addr add 203.0.113.10/24 dev vs && ip route add default via 203.0.113.1'",
    };
    for (const auto& cmd : setup) ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const int cns = open_netns(client), sns = open_netns(server);
    ASSERT_GE(cns, 0);
    ASSERT_GE(sns, 0);
    const int l587 = listen_on(587, sns), l2525 = listen_on(2525, sns);
    ASSERT_GE(l587, 0);
    ASSERT_GE(l2525, 0);
    EXPECT_TRUE(connects("198.51.100.20", "203.0.113.10", 587, 5000, cns));

    NftLayout layout;
    layout.ports = {587};
    layout.hooks = {"input"};
    {
      // The input hook alone (where fail2ban bans) misses forwarded traffic entirely.
      NftBanBackend input_only(layout);
      ASSERT_TRUE(input_only.prepare().ok);
      ASSERT_TRUE(
          input_only.apply(std::vector<BanChange>{BanChange::add(P("198.51.100.20"), 600)}, 0)
              .ok());
      EXPECT_TRUE(connects("198.51.100.20", "203.0.113.10", 587, 5000, cns));
    }
    layout.hooks = {"input", "forward"};
    NftBanBackend b(layout);
    const PrepareResult p = b.prepare();
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_EQ(p.repaired, 1u);  // the forward chain; the set and its ban are kept
    EXPECT_FALSE(connects("198.51.100.20", "203.0.113.10", 587, 1500, cns));
    EXPECT_TRUE(connects("198.51.100.21", "203.0.113.10", 587, 5000, cns));
    EXPECT_TRUE(connects("198.51.100.20", "203.0.113.10", 2525, 5000, cns));

    close(l587);
    close(l2525);
    close(cns);
    close(sns);
    kill(client, SIGKILL);
    kill(server, SIGKILL);
    waitpid(client, nullptr, 0);
    waitpid(server, nullptr, 0);
  });
}

}  // namespace
}  // namespace authwall::actions
