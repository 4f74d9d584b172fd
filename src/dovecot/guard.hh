// The one way our C++ is entered from a Dovecot callback (a hook, a vfunc,
// a stream's read or write, a timeout): guard() runs the body and catches
// anything it throws, std::bad_alloc included. One policy for every
// failure of ours: the caller stops logging what the body was logging,
// one Error line says why, the Dovecot process and the session go on.
// Never a panic, never a fatal: the mail session always wins.
//
// Out of memory is treated like any other failure on purpose. A
// set_new_handler() that ends the process (what Dovecot's own allocators
// do) would kill a delivery over a log; our libstdc++ is private to the
// module, so its default handler, which throws, reaches only our code,
// and a large allocation that fails (a spool, a held buffer) leaves
// Dovecot's own memory untouched.
#ifndef RAWLOG_EXT_GUARD_HH
#define RAWLOG_EXT_GUARD_HH

#include "compat.hh"

#include <exception>

namespace rawlog_ext {

// Says in event's log (at Error) that what failed and why; from within a
// catch block only (it looks at the exception being handled).
void report_failure(struct event *event, const char *what) noexcept;

#ifdef RAWLOG_EXT_FAULT_INJECTION
// Test builds only (configure --enable-fault-injection): with
// RAWLOG_EXT_FAULT=<what, spaces as '_'>[:<n>] in the environment, the
// n-th (default: first) guarded body of that name in the process fails
// as if out of memory.
void inject_fault(const char *what);
#endif

// Runs body(); false if it threw (then reported as "<what> failed").
template <typename Body>
bool guard(struct event *event, const char *what, Body &&body) noexcept
{
	try {
#ifdef RAWLOG_EXT_FAULT_INJECTION
		inject_fault(what);
#endif
		body();
		return true;
	} catch (...) {
		report_failure(event, what);
	}
	return false;
}

} // namespace rawlog_ext

#endif
