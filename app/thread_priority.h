#pragma once
// Scheduling priority of the daemon's own threads (app/daemon.h "Threads").
#include <string>

namespace authwall::app {

// How much the actions thread lowers its nice value below the process's (favouring it over the
// I/O workers and over other processes): on a busy 2-core machine a ban otherwise waits for a
// CPU behind them. Measured in BENCHMARKS.md "Offence history off the ban path".
inline constexpr int kActionsNiceBoost = 10;

// Lowers the calling thread's nice value by `steps` (Linux keeps a nice value per thread),
// not below -20. Lowering needs CAP_SYS_NICE or an RLIMIT_NICE that allows the new value
// (systemd: LimitNICE=); without either it returns false, sets `error` to one sentence and
// leaves the thread as it was. `nice` receives the thread's nice value afterwards.
bool lower_thread_nice(int steps, int& nice, std::string& error) noexcept;

}  // namespace authwall::app
