#include "guard.hh"

#include <new>

namespace rawlog_ext {

void report_failure(struct event *event, const char *what) noexcept
{
	// Copied out while the exception is still being handled.
	char reason[256] = "unexpected internal error";
	try {
		throw;
	} catch (const std::bad_alloc &) {
		i_strocpy(reason, "out of memory", sizeof(reason));
	} catch (const std::exception &e) {
		i_strocpy(reason, e.what(), sizeof(reason));
	} catch (...) {
	}
	if (event != nullptr)
		e_error(event, "%s failed: %s: logging stopped", what, reason);
	else
		i_error("rawlog_ext: %s failed: %s: logging stopped", what,
			reason);
}

} // namespace rawlog_ext
