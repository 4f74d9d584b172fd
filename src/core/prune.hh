// doveadm rawlog prune (issue #15 item 1): retention over log trees. The
// walk, the choice of what goes and the removal, in plain C++ (the
// command itself is src/doveadm/doveadm-rawlog-prune.cc).
//
// Safety rules: no symlink is ever followed (every directory and file is
// opened with O_NOFOLLOW, every entry looked at with AT_SYMLINK_NOFOLLOW);
// the walk stays on the filesystem of the tree's top; only regular files
// whose names parse as log names (parse_log_name()) are counted or
// removed; a file whose flock() is held (its session still runs: the
// module holds LOCK_EX on every file it writes) is kept, and the lock is
// tested again, and held shared, while a log's files are unlinked.
#ifndef RAWLOG_EXT_PRUNE_HH
#define RAWLOG_EXT_PRUNE_HH

#include "log-name.hh"

#include <cstdint>
#include <ctime>
#include <string>
#include <sys/types.h>
#include <vector>

namespace rawlog_ext {

struct PruneRule {
	time_t older_than = 0;		// seconds; 0 = no age rule
	bool has_max_total = false;
	uint64_t max_total = 0;		// bytes left at most
	time_t now = 0;
};

struct PruneFile {
	size_t root = 0;	// index of the tree in the roots scanned
	std::string rel_dir;	// the directory below the top ("" = the top)
	std::string name;	// the file's name
	std::string path;	// the top + rel_dir + name, for messages
	LogName log;
	uint64_t size = 0;
	time_t mtime = 0;
	dev_t dev = 0;
	ino_t ino = 0;
	// Why the file must stay, "" if it may go: "running" (its lock is
	// held) or why its lock could not be tested.
	std::string kept;
};

// One log: the files of one name stem in one directory (a split log's
// .in and .out, a transcript's .log; sealed or not).
struct PruneLog {
	std::vector<PruneFile> files;
	time_t time = 0;	// the name's time
	time_t mtime = 0;	// the newest file's mtime
	uint64_t bytes = 0;
	std::string kept;	// a file's reason to stay, "" = none
	bool remove = false;	// chosen by prune_select()
};

// Adds the log files below root (its index in the caller's list of trees:
// root_index) to files_r. Directories that cannot be read, other
// filesystems and too deep trees are skipped with a warning. False if root
// itself cannot be opened (a symlink is refused), error_r says why;
// missing_r then tells whether it does not exist.
bool prune_scan(const std::string &root, size_t root_index,
		std::vector<PruneFile> &files_r,
		std::vector<std::string> &warnings_r, bool &missing_r,
		std::string &error_r);

// The files grouped into logs, oldest first: by the name's time, then the
// newest mtime, then path. A file met twice (same device and inode: a tree
// inside another) counts once.
std::vector<PruneLog> prune_group(std::vector<PruneFile> files);

// Marks the logs to remove, oldest first: every log that may go while the
// total (kept logs counted) is above rule.max_total, and every one whose
// name time and files are all older than rule.older_than. Returns the
// bytes that are left.
uint64_t prune_select(std::vector<PruneLog> &logs, const PruneRule &rule);

enum class PruneRemoved { removed, kept, failed };
// Removes a log's files: each reached again from the top of its tree
// (roots[file.root]) without following symlinks, checked to be the file
// scanned, its lock taken shared (all of them before any is unlinked).
// kept: a file's lock is held now (kept_r = "running") or a file changed
// meanwhile (kept_r says so), nothing removed; failed: error_r says why
// (files unlinked before the failure stay removed).
PruneRemoved prune_remove(const std::vector<std::string> &roots,
			  const PruneLog &log, std::string &kept_r,
			  std::string &error_r);

// The part of a directory template (rawlog_ext_dir) before its first
// component that holds a variable ('%'), without a trailing '/'; "" when
// the template starts with a variable ("%h/rawlog"), is relative or
// would leave "/" alone: such a template cannot be pruned globally.
std::string prune_template_root(const std::string &tmpl);

} // namespace rawlog_ext

#endif
