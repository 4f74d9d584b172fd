// The viewer's grouping of log files (names read by parse_log_name(),
// core/log-name.hh) into sessions, for `rawlog-ext-view list`
// and --session (issue #17 items 2 and 7). No I/O here: the walk of a
// tree is view.cc's.
#ifndef RAWLOG_EXT_VIEW_SESSIONS_HH
#define RAWLOG_EXT_VIEW_SESSIONS_HH

#include "core/log-name.hh"

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

namespace rawlog_ext {

// The leg a file is of, as --json's "leg": "pre-login" (the login
// companion's <service>-login file), "backend" (<service>-login-proxy,
// lmtp-proxy: Dovecot's connection to a backend), "relay"
// (submission-relay), "session" (a mail process's own log).
std::string leg_of(const std::string &service);

// A login-companion user directory's name back to the user (its %XX
// escapes undone, see login_user_dir()).
std::string user_from_login_dir(const std::string &component);

// Seconds to "YYYY-MM-DDTHH:MM:SSZ".
std::string utc_iso(time_t t);

struct LogFile {
	std::string path;
	// The name of the directory that holds the file, below the tree
	// given ("" when it is the tree's top).
	std::string dir_name;
	LogName name;
	uint64_t size = 0;
	time_t mtime = 0;
};

struct SessionEntry {
	std::string id;
	std::vector<LogFile> files;	// by name time, then name
	time_t start = 0;		// earliest name time
	time_t last_mtime = 0;
	uint64_t bytes = 0;
	std::string user;		// "" = unknown
	std::vector<std::string> services;	// in order of first file
	std::vector<std::string> ips;		// sanitized, as in names
};

// The user a file tells: a login-companion file (<service>-login,
// <service>-login-proxy) in a user's subdirectory its decoded name; a
// mail process's file in a subdirectory that directory's name (the last
// component of rawlog_ext_dir, usually %u); "" when in the top directory.
std::string user_of(const LogFile &file);

// The order of a session's files: by name time; in one second the login
// companion's first, then the mail process's, then legs; then by path.
bool file_before(const LogFile &a, const LogFile &b);

// Groups files by session id, sorted by start (then id). A session's user
// is the login companion's if any of its files tells it, else the first
// one a file tells.
std::vector<SessionEntry> group_sessions(std::vector<LogFile> files);

} // namespace rawlog_ext

#endif
