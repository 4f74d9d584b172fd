// Reading log file names back: the inverse of log_base_name() (naming.hh),
// for the viewer (src/view) and doveadm rawlog prune (prune.hh). No I/O.
#ifndef RAWLOG_EXT_LOG_NAME_HH
#define RAWLOG_EXT_LOG_NAME_HH

#include "naming.hh"

#include <ctime>
#include <string>

namespace rawlog_ext {

struct LogName {
	NameParts parts;	// as sanitized in the name
	std::string ext;	// "in", "out" or "log"
	bool sealed = false;	// ".age" after it
	unsigned int n = 0;	// the collision counter, 0 = none
	std::string stem;	// the name without ".in"/".out"/".log"[".age"]
};

// "<YYYYMMDD>T<HHMMSS>Z_<service>_<session>_<pid>_<hostname>[_<peer>][_<ip>][_<n>]"
// + ".in"/".out"/".log" [+ ".age"]; false for any other name. A peer is
// only read for a leg's service (ending in "-proxy" or "-relay": the
// only files the module gives one).
bool parse_log_name(const std::string &file_name, LogName &r);

// "YYYY-MM-DD[THH:MM[:SS]]" (UTC) to seconds, with the same checks as a
// name's time (rawlog-ext-view list --since/--until); false if malformed.
bool parse_utc_time(const std::string &text, time_t &r);

} // namespace rawlog_ext

#endif
