#include "app/crash_report.h"

#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cstdint>

namespace settle::app {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

// Async-signal-safe output: write(2) only, numbers formatted by hand.
void put(const char* s) {
  const size_t n = strlen(s);
  for (size_t done = 0; done < n;) {
    const ssize_t w = ::write(STDERR_FILENO, s + done, n - done);
    if (w <= 0) return;
    done += static_cast<size_t>(w);
  }
}

void put_number(std::uintptr_t v, int base) {
  char buf[32];
  int i = sizeof(buf) - 1;
  buf[i] = '\0';
  do {
    buf[--i] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0 && i > 0);
  if (base == 16) {
    buf[--i] = 'x';
    buf[--i] = '0';
  }
  put(buf + i);
}

void on_fatal_signal(int sig, siginfo_t* info, void*) {
  put("settled: fatal signal ");
  put_number(static_cast<std::uintptr_t>(sig), 10);
  const char* name = sigabbrev_np(sig);
  if (name != nullptr) {
    put(" (SIG");
    put(name);
    put(")");
  }
  if (info != nullptr && info->si_code > 0 && sig != SIGABRT) {  // raised by the kernel: a fault
    put(" at address ");
    put_number(reinterpret_cast<std::uintptr_t>(info->si_addr), 16);
  } else if (info != nullptr && info->si_code == SI_USER) {
    put(" sent by pid ");
    put_number(static_cast<std::uintptr_t>(info->si_pid), 10);
  }
  put("; thread ");
  put_number(static_cast<std::uintptr_t>(gettid()), 10);
  put("; stack:\n");
  void* frames[64];
  const int n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  // The default action now: the core dump and wait status are the signal's.
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void install_crash_report() {
  if constexpr (kSanitized) return;
  // backtrace() loads libgcc's unwinder on first use, which allocates: do
  // it now rather than in the handler.
  void* warm[4];
  (void)backtrace(warm, 4);
  struct sigaction sa {};
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (int sig : kSignals) sigaction(sig, &sa, nullptr);
}

}  // namespace settle::app
