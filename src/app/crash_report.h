// When settled crashes (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT), a report
// goes to stderr before the signal takes its default course (core dump,
// the same wait status): which signal, the faulting address, and the stack
// as return addresses in the binary, which `addr2line -f -C -e settled
// +OFFSET...` turns into functions and lines. Without it a role that dies
// leaves nothing in its log after its last ordinary line.
#pragma once

namespace settle::app {

// Installs the handlers; call once, early in main. Does nothing in a build
// with AddressSanitizer or ThreadSanitizer, whose own reports say more.
void install_crash_report();

}  // namespace settle::app
