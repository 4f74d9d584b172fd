#include "warn-once.hh"

#include <set>

namespace rawlog_ext {

void warn_once(struct event *event, const std::string &what)
{
	// lib-dict's errors end in timings ("(reply took 0.001 secs ...)"):
	// not part of the cause, and not worth an admin's reading.
	std::string cause = what;
	size_t timing = cause.find(" (reply took ");
	if (timing != std::string::npos) {
		// To its matching ')': it holds "(0.000 in dict wait, ...)".
		size_t end = timing + 2;
		for (int depth = 0; end < cause.size(); end++) {
			if (cause[end] == '(')
				depth++;
			else if (cause[end] == ')' && depth-- == 0)
				break;
		}
		cause.erase(timing, end + 1 - timing);
	}
	static std::set<std::string> said;
	if (said.size() < 64 && said.insert(cause).second)
		e_warning(event, "%s", cause.c_str());
}

} // namespace rawlog_ext
