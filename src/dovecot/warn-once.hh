// A Warning once per process and cause: an unreachable control dict
// must not fill the log with one line per session.
#ifndef RAWLOG_EXT_WARN_ONCE_HH
#define RAWLOG_EXT_WARN_ONCE_HH

#include "compat.hh"

#include <string>

namespace rawlog_ext {

// lib-dict's "(reply took ...)" timings in what are not part of the
// cause.
// At most 64 causes are remembered; later new ones are not said.
void warn_once(struct event *event, const std::string &what);

} // namespace rawlog_ext

#endif
