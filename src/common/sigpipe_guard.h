// A write to a socket whose peer reset the connection raises SIGPIPE, whose
// default action ends the process. Libraries that write with write(2)
// (hiredis) cannot pass MSG_NOSIGNAL, so their callers hold a SigpipeGuard
// around the I/O: SIGPIPE is blocked in this thread for the guard's lifetime,
// and one raised meanwhile is consumed, so the write fails with EPIPE and
// the process's own disposition (and other threads) are untouched.
#pragma once

#include <signal.h>

namespace settle {

class SigpipeGuard {
 public:
  SigpipeGuard();
  ~SigpipeGuard();
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;  // pending before the guard: not ours to consume
};

}  // namespace settle
