#pragma once
// Helpers for tests that need the real kernel: each body runs in a forked child inside a fresh
// network namespace (unshare(CLONE_NEWNET)), so the machine's own ruleset is never touched and
// every test starts from an empty one. gtest failures inside the child are printed by the child
// and reported to the parent through its exit status.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <vector>
#include <string>

#include <simdjson.h>

namespace authwall::testing {

inline bool running_as_root() { return geteuid() == 0; }

#define AUTHWALL_REQUIRE_ROOT()                                                      \
  do {                                                                               \
    if (!::authwall::testing::running_as_root()) GTEST_SKIP() << "needs root (netns)"; \
  } while (0)

// Runs `body` in a child process in a new network namespace with loopback up.
inline void run_in_netns(const std::function<void()>& body, unsigned timeout_seconds = 120) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    alarm(timeout_seconds);  // a hung child dies with SIGALRM instead of hanging the suite
    if (unshare(CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", std::strerror(errno));
      _exit(3);
    }
    if (std::system("ip link set lo up") != 0) _exit(4);
    body();
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failures inside the network namespace (see above)";
}

// Output of a shell command (stdout), and its exit status.
inline std::string run_command(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  if (status != nullptr) *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

// Drops CAP_NET_ADMIN from this process's effective set (root without it gets EPERM).
inline bool drop_net_admin() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  data[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
  return syscall(SYS_capset, &hdr, data) == 0;
}

// What `nft -j list table inet <table>` shows, reduced to what the tests check.
struct NftView {
  struct Elem {
    std::string val;        // "192.0.2.7" or "2001:db8:1::/64" (prefix) or "a-b" (range)
    std::int64_t timeout = -1;  // seconds; -1 when absent
    std::int64_t expires = -1;
  };
  struct Set {
    std::string type;
    std::vector<std::string> flags;
    std::vector<Elem> elems;
  };
  struct Chain {
    std::string type, hook, policy;
    std::int64_t prio = 0;
    std::vector<std::string> rules;  // each rule's expr array as minified JSON
  };
  bool table_present = false;
  std::map<std::string, Set> sets;
  std::map<std::string, Chain> chains;

  const Elem* find(const std::string& set, const std::string& val) const {
    auto it = sets.find(set);
    if (it == sets.end()) return nullptr;
    for (const auto& e : it->second.elems) {
      if (e.val == val) return &e;
    }
    return nullptr;
  }
};

inline std::string elem_text(simdjson::dom::element v) {
  if (v.is_string()) return std::string(std::string_view(v.get_string().value()));
  simdjson::dom::element p;
  if (v["prefix"].get(p) == simdjson::SUCCESS) {
    return std::string(std::string_view(p["addr"].get_string().value())) + "/" +
           std::to_string(p["len"].get_int64().value());
  }
  simdjson::dom::array r;
  if (v["range"].get(r) == simdjson::SUCCESS) {
    std::string s;
    for (auto x : r) s += (s.empty() ? "" : "-") + std::string(std::string_view(x.get_string().value()));
    return s;
  }
  return simdjson::minify(v);
}

inline NftView nft_view(const std::string& table = "authwall") {
  NftView view;
  int status = 0;
  const std::string json = run_command("nft -j list table inet " + table + " 2>/dev/null", &status);
  if (status != 0 || json.empty()) return view;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) return view;
  simdjson::dom::array items;
  if (doc["nftables"].get(items) != simdjson::SUCCESS) return view;
  for (auto item : items) {
    simdjson::dom::element o;
    if (item["table"].get(o) == simdjson::SUCCESS) view.table_present = true;
    if (item["set"].get(o) == simdjson::SUCCESS) {
      NftView::Set s;
      s.type = std::string(std::string_view(o["type"].get_string().value()));
      simdjson::dom::array flags;
      if (o["flags"].get(flags) == simdjson::SUCCESS) {
        for (auto f : flags) s.flags.emplace_back(std::string_view(f.get_string().value()));
      }
      simdjson::dom::array elems;
      if (o["elem"].get(elems) == simdjson::SUCCESS) {
        for (auto e : elems) {
          NftView::Elem el;
          simdjson::dom::element inner;
          if (e["elem"].get(inner) == simdjson::SUCCESS) {
            el.val = elem_text(inner["val"].value());
            std::int64_t n;
            if (inner["timeout"].get_int64().get(n) == simdjson::SUCCESS) el.timeout = n;
            if (inner["expires"].get_int64().get(n) == simdjson::SUCCESS) el.expires = n;
          } else {
            el.val = elem_text(e);
          }
          s.elems.push_back(el);
        }
      }
      view.sets[std::string(std::string_view(o["name"].get_string().value()))] = s;
    }
    if (item["chain"].get(o) == simdjson::SUCCESS) {
      NftView::Chain c;
      std::string_view sv;
      if (o["type"].get_string().get(sv) == simdjson::SUCCESS) c.type = sv;
      if (o["hook"].get_string().get(sv) == simdjson::SUCCESS) c.hook = sv;
      if (o["policy"].get_string().get(sv) == simdjson::SUCCESS) c.policy = sv;
      std::int64_t prio;
      if (o["prio"].get_int64().get(prio) == simdjson::SUCCESS) c.prio = prio;
      auto& slot = view.chains[std::string(std::string_view(o["name"].get_string().value()))];
      c.rules = slot.rules;
      slot = c;
    }
    if (item["rule"].get(o) == simdjson::SUCCESS) {
      const std::string chain(std::string_view(o["chain"].get_string().value()));
      view.chains[chain].rules.push_back(simdjson::minify(o["expr"].value()));
    }
  }
  return view;
}

}  // namespace authwall::testing
