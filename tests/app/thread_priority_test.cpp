// lower_thread_nice (app/thread_priority.h): changes the calling thread only, and works without
// CAP_SYS_NICE exactly as far as RLIMIT_NICE allows (the systemd LimitNICE= set-up).
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "app/thread_priority.h"

namespace authwall::app {
namespace {

int thread_nice() { return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())); }

TEST(LowerThreadNice, ChangesOnlyTheCallingThreadOrExplainsWhyNot) {
  const int main_before = thread_nice();
  int other_after = 0;
  int reported = 0;
  bool ok = false;
  std::string error;
  std::thread t([&] {
    ok = lower_thread_nice(1, reported, error);
    other_after = thread_nice();
  });
  t.join();
  EXPECT_EQ(thread_nice(), main_before);  // per thread, not per process
  if (ok) {
    EXPECT_EQ(reported, std::max(-20, main_before - 1));
    EXPECT_EQ(other_after, reported);
  } else {
    // Unprivileged and no RLIMIT_NICE: nothing changed, and the message says what is missing.
    EXPECT_EQ(reported, main_before);
    EXPECT_EQ(other_after, main_before);
    EXPECT_NE(error.find("LimitNICE="), std::string::npos) << error;
  }
}

// Without CAP_SYS_NICE (dropped in a child), RLIMIT_NICE is the limit: 25 allows nice -5.
TEST(LowerThreadNice, RlimitNiceIsTheLimitWithoutTheCapability) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to set up the limit and drop the capability";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Only async-signal-safe-ish calls and exit codes here: no gtest in the child.
    if (::setpriority(PRIO_PROCESS, 0, 0) != 0) ::_exit(10);
    const rlimit limit{25, 25};
    if (::setrlimit(RLIMIT_NICE, &limit) != 0) ::_exit(77);  // no CAP_SYS_RESOURCE (containers)
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &header, data) != 0) ::_exit(12);
    data[CAP_SYS_NICE / 32].effective &= ~(1u << (CAP_SYS_NICE % 32));
    if (::syscall(SYS_capset, &header, data) != 0) ::_exit(13);
    int nice = 0;
    std::string error;
    if (lower_thread_nice(10, nice, error)) ::_exit(20);  // -10 is beyond the limit
    if (nice != 0 || thread_nice() != 0) ::_exit(21);
    if (!lower_thread_nice(5, nice, error)) ::_exit(22);  // -5 is within it
    if (nice != -5 || thread_nice() != -5) ::_exit(23);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "cannot raise RLIMIT_NICE here";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace authwall::app
