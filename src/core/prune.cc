#include "prune.hh"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <set>
#include <tuple>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rawlog_ext {

namespace {

// Deeper than any tree the module writes (top, user, maybe one more).
const unsigned int max_depth = 16;

std::string errno_text(int error)
{
	return strerror(error);
}

class Fd {
public:
	explicit Fd(int fd = -1) : fd_(fd) {}
	~Fd() { reset(); }
	Fd(const Fd &) = delete;
	Fd &operator=(const Fd &) = delete;
	Fd(Fd &&other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
	int get() const { return fd_; }
	void reset(int fd = -1)
	{
		if (fd_ != -1)
			(void)close(fd_);
		fd_ = fd;
	}
private:
	int fd_;
};

int open_dir_at(int dirfd, const char *name)
{
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		      O_CLOEXEC | O_NOCTTY);
}

// A log file opened to test or hold its lock: never a symlink, never a
// FIFO's wait (O_NONBLOCK), and only what fstatat() saw.
int open_file_at(int dirfd, const char *name, const struct stat &expect)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
			O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_dev != expect.st_dev || st.st_ino != expect.st_ino) {
		(void)close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

std::string join(const std::string &dir, const std::string &name)
{
	if (dir.empty())
		return name;
	if (name.empty())
		return dir;
	return dir + "/" + name;
}

struct Walk {
	size_t root_index;
	std::string root;
	dev_t dev;
	std::vector<PruneFile> &files;
	std::vector<std::string> &warnings;
};

void walk_dir(Walk &w, int dirfd, const std::string &rel, unsigned int depth)
{
	const std::string shown = join(w.root, rel);
	int fd = dup(dirfd);
	DIR *dir = fd == -1 ? nullptr : fdopendir(fd);
	if (dir == nullptr) {
		w.warnings.push_back("reading " + shown + " failed: " +
				     errno_text(errno));
		if (fd != -1)
			(void)close(fd);
		return;
	}
	std::vector<std::string> subdirs;
	for (;;) {
		errno = 0;
		struct dirent *d = readdir(dir);
		if (d == nullptr) {
			if (errno != 0)
				w.warnings.push_back("reading " + shown +
					" failed: " + errno_text(errno));
			break;
		}
		const std::string name = d->d_name;
		if (name == "." || name == "..")
			continue;
		struct stat st;
		if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT)
				w.warnings.push_back("stat " + join(shown, name) +
					" failed: " + errno_text(errno));
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != w.dev)
				w.warnings.push_back(join(shown, name) +
					": another filesystem, not pruned");
			else
				subdirs.push_back(name);
			continue;
		}
		// Symlinks, FIFOs, sockets, devices: never looked into.
		if (!S_ISREG(st.st_mode))
			continue;
		PruneFile f;
		if (!parse_log_name(name, f.log))
			continue;
		f.root = w.root_index;
		f.rel_dir = rel;
		f.name = name;
		f.path = join(shown, name);
		f.size = (uint64_t)st.st_size;
		f.mtime = st.st_mtime;
		f.dev = st.st_dev;
		f.ino = st.st_ino;
		Fd file(open_file_at(dirfd, name.c_str(), st));
		if (file.get() == -1) {
			if (errno == ENOENT)
				continue;	// gone meanwhile
			f.kept = "cannot open: " + errno_text(errno);
		} else if (flock(file.get(), LOCK_SH | LOCK_NB) < 0) {
			f.kept = errno == EWOULDBLOCK ? "running" :
				"flock failed: " + errno_text(errno);
		}
		w.files.push_back(std::move(f));
	}
	closedir(dir);
	std::sort(subdirs.begin(), subdirs.end());
	for (const std::string &name : subdirs) {
		const std::string sub = join(rel, name);
		if (depth + 1 > max_depth) {
			w.warnings.push_back(join(w.root, sub) +
					     ": too deep, not pruned");
			continue;
		}
		Fd subfd(open_dir_at(dirfd, name.c_str()));
		if (subfd.get() == -1) {
			if (errno != ENOENT)
				w.warnings.push_back("opening " + join(w.root, sub) +
					" failed: " + errno_text(errno));
			continue;
		}
		struct stat st;
		if (fstat(subfd.get(), &st) < 0 || st.st_dev != w.dev)
			continue;
		walk_dir(w, subfd.get(), sub, depth + 1);
	}
}

// The top of a tree, opened without following a symlink at its end.
int open_root(const std::string &root)
{
	return open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC | O_NOCTTY);
}

time_t newest(const PruneLog &log)
{
	return std::max(log.time, log.mtime);
}

} // namespace

bool prune_scan(const std::string &root_in, size_t root_index,
		std::vector<PruneFile> &files_r,
		std::vector<std::string> &warnings_r, bool &missing_r,
		std::string &error_r)
{
	std::string root = root_in;
	while (root.size() > 1 && root.back() == '/')
		root.pop_back();
	missing_r = false;
	Fd fd(open_root(root));
	if (fd.get() == -1) {
		int error = errno;
		struct stat st;
		missing_r = error == ENOENT;
		if (error == ELOOP || error == ENOTDIR) {
			if (lstat(root.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
				error_r = root + " is a symlink, not followed";
			else
				error_r = root + " is not a directory";
		} else {
			error_r = "opening " + root + " failed: " +
				errno_text(error);
		}
		return false;
	}
	struct stat st;
	if (fstat(fd.get(), &st) < 0) {
		error_r = "stat " + root + " failed: " + errno_text(errno);
		return false;
	}
	Walk w = { root_index, root, st.st_dev, files_r, warnings_r };
	walk_dir(w, fd.get(), "", 0);
	return true;
}

std::vector<PruneLog> prune_group(std::vector<PruneFile> files)
{
	std::map<std::tuple<size_t, std::string, std::string>, size_t> index;
	std::vector<PruneLog> logs;
	// A tree inside another (rawlog_ext_lmtp_dir below rawlog_ext_dir)
	// is walked twice: each file counts once.
	std::set<std::pair<dev_t, ino_t>> seen;
	for (PruneFile &f : files) {
		if (!seen.emplace(f.dev, f.ino).second)
			continue;
		auto key = std::make_tuple(f.root, f.rel_dir, f.log.stem);
		auto it = index.find(key);
		if (it == index.end()) {
			it = index.emplace(key, logs.size()).first;
			logs.emplace_back();
			logs.back().time = f.log.parts.time;
		}
		PruneLog &log = logs[it->second];
		log.mtime = std::max(log.mtime, f.mtime);
		log.bytes += f.size;
		if (log.kept.empty())
			log.kept = f.kept;
		log.files.push_back(std::move(f));
	}
	for (PruneLog &log : logs)
		std::sort(log.files.begin(), log.files.end(),
			  [](const PruneFile &a, const PruneFile &b) {
				  return a.name < b.name;
			  });
	std::sort(logs.begin(), logs.end(),
		  [](const PruneLog &a, const PruneLog &b) {
			  if (a.time != b.time)
				  return a.time < b.time;
			  if (a.mtime != b.mtime)
				  return a.mtime < b.mtime;
			  return a.files.front().path < b.files.front().path;
		  });
	return logs;
}

uint64_t prune_select(std::vector<PruneLog> &logs, const PruneRule &rule)
{
	uint64_t total = 0;
	for (const PruneLog &log : logs)
		total += log.bytes;
	for (PruneLog &log : logs) {
		log.remove = false;
		if (!log.kept.empty())
			continue;
		const bool old = rule.older_than > 0 &&
			newest(log) < rule.now - rule.older_than;
		const bool over = rule.has_max_total && total > rule.max_total;
		if (old || over) {
			log.remove = true;
			total -= log.bytes;
		}
	}
	return total;
}

PruneRemoved prune_remove(const std::vector<std::string> &roots,
			  const PruneLog &log, std::string &kept_r,
			  std::string &error_r)
{
	kept_r.clear();
	if (log.files.empty())
		return PruneRemoved::removed;
	// The files of one log are in one directory.
	const PruneFile &first = log.files.front();
	if (first.root >= roots.size()) {
		error_r = first.path + ": no such tree";
		return PruneRemoved::failed;
	}
	std::string root = roots[first.root];
	while (root.size() > 1 && root.back() == '/')
		root.pop_back();
	Fd dir(open_root(root));
	if (dir.get() == -1) {
		error_r = "opening " + root + " failed: " + errno_text(errno);
		return PruneRemoved::failed;
	}
	struct stat st;
	if (fstat(dir.get(), &st) < 0) {
		error_r = "stat " + root + " failed: " + errno_text(errno);
		return PruneRemoved::failed;
	}
	const dev_t dev = st.st_dev;
	size_t start = 0;
	const std::string &rel = first.rel_dir;
	while (start < rel.size()) {
		size_t end = rel.find('/', start);
		if (end == std::string::npos)
			end = rel.size();
		const std::string component = rel.substr(start, end - start);
		start = end + 1;
		Fd sub(open_dir_at(dir.get(), component.c_str()));
		if (sub.get() == -1 || fstat(sub.get(), &st) < 0 ||
		    st.st_dev != dev) {
			kept_r = "its directory changed";
			return PruneRemoved::kept;
		}
		dir.reset(dup(sub.get()));
		if (dir.get() == -1) {
			error_r = "dup failed: " + errno_text(errno);
			return PruneRemoved::failed;
		}
	}
	// Every lock first: a log whose session runs loses no file.
	std::vector<Fd> held;
	for (const PruneFile &f : log.files) {
		struct stat expect = {};
		expect.st_dev = f.dev;
		expect.st_ino = f.ino;
		Fd fd(open_file_at(dir.get(), f.name.c_str(), expect));
		if (fd.get() == -1) {
			kept_r = errno == ENOENT ? "gone meanwhile" :
				"changed meanwhile";
			return PruneRemoved::kept;
		}
		if (flock(fd.get(), LOCK_SH | LOCK_NB) < 0) {
			kept_r = errno == EWOULDBLOCK ? "running" :
				"flock failed: " + errno_text(errno);
			return PruneRemoved::kept;
		}
		held.push_back(std::move(fd));
	}
	for (const PruneFile &f : log.files) {
		if (unlinkat(dir.get(), f.name.c_str(), 0) < 0 &&
		    errno != ENOENT) {
			error_r = "unlink " + f.path + " failed: " +
				errno_text(errno);
			return PruneRemoved::failed;
		}
	}
	return PruneRemoved::removed;
}

std::string prune_template_root(const std::string &tmpl)
{
	if (tmpl.empty() || tmpl[0] != '/')
		return "";
	std::string root;
	size_t start = 1;
	while (start <= tmpl.size()) {
		size_t end = tmpl.find('/', start);
		if (end == std::string::npos)
			end = tmpl.size();
		const std::string component = tmpl.substr(start, end - start);
		start = end + 1;
		if (component.find('%') != std::string::npos)
			break;
		if (!component.empty())
			root += "/" + component;
	}
	return root;
}

} // namespace rawlog_ext
