#include "guard.hh"

#include <cstdlib>
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

#ifdef RAWLOG_EXT_FAULT_INJECTION
void inject_fault(const char *what)
{
	static unsigned int calls = 0;
	const char *spec = getenv("RAWLOG_EXT_FAULT");
	if (spec == nullptr)
		return;
	size_t i = 0;
	for (; what[i] != '\0'; i++) {
		if (spec[i] != (what[i] == ' ' ? '_' : what[i]))
			return;
	}
	unsigned int nth = 1;
	if (spec[i] == ':')
		nth = (unsigned int)strtoul(spec + i + 1, nullptr, 10);
	else if (spec[i] != '\0')
		return;
	if (++calls == nth)
		throw std::bad_alloc();
}
#endif

} // namespace rawlog_ext
