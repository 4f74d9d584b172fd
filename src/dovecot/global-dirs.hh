// The log trees a configuration names, read without a user (doveadm rawlog
// prune's default DIRs). Defined per line in internals-<line>/global-dirs.cc:
// 2.3 asks doveconf (doveadm has no API for plugin {} without a user), 2.4
// reads the settings of doveadm's settings event.
#ifndef RAWLOG_EXT_GLOBAL_DIRS_HH
#define RAWLOG_EXT_GLOBAL_DIRS_HH

#include "compat.hh"

#include <string>
#include <vector>

struct event;

namespace rawlog_ext {

struct ConfiguredDir {
	const char *setting;	// "rawlog_ext_dir", "rawlog_ext_lmtp_dir"
	std::string tmpl;	// as configured, variables unexpanded
};

// The settings that are set, in that order. False, error_r says why, if
// the configuration cannot be read.
bool configured_log_dirs(struct event *event,
			 std::vector<ConfiguredDir> &dirs_r,
			 std::string &error_r);

} // namespace rawlog_ext

#endif
