#include "app/thread_priority.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace authwall::app {

bool lower_thread_nice(int steps, int& nice, std::string& error) noexcept {
  // PRIO_PROCESS with a thread id addresses that one thread on Linux.
  const auto self = static_cast<id_t>(::gettid());
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, self);
  if (current == -1 && errno != 0) {
    error = std::string("cannot read the thread's nice value: ") + std::strerror(errno);
    nice = 0;
    return false;
  }
  nice = current;
  const int wanted = std::max(-20, current - steps);
  if (::setpriority(PRIO_PROCESS, self, wanted) != 0) {
    error = "cannot lower the nice value from " + std::to_string(current) + " to " +
            std::to_string(wanted) + ": " + std::strerror(errno) +
            " (needs CAP_SYS_NICE or RLIMIT_NICE, e.g. systemd LimitNICE=" +
            (wanted >= 0 ? "+" : "") + std::to_string(wanted) + ")";
    return false;
  }
  nice = wanted;
  return true;
}

}  // namespace authwall::app
