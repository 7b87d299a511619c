#pragma once
// A software prefetch the compiler keeps.
//
// GCC treats __builtin_prefetch as free of side effects, so a loop (or a lambda) whose only
// effect is prefetching is deleted as dead code: the rules engine's entry prefetches silently
// vanished that way (found 2026-11-28 in the disassembly; BENCHMARKS.md "Rules engine"). The
// empty volatile asm that takes the address makes the hint observable, which costs nothing.

namespace authwall {

inline void prefetch_line(const void* p) noexcept {
  __builtin_prefetch(p);
  asm volatile("" : : "r"(p));
}

}  // namespace authwall
