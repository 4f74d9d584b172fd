#include "sink.hh"
#include "fd-io.hh"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rawlog_ext {

namespace {

const unsigned int max_name_collisions = 100;

std::string errno_text(int err)
{
	return strerror(err);
}

int open_dir_nofollow(int dirfd, const char *name)
{
	return openat(dirfd, name,
		      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

// Someone else's directory could be emptied or renamed under us, or be
// there to switch logging on for a user who never asked for it.
bool check_dir_owner(int dirfd, const std::string &dir, std::string &error_r)
{
	struct stat st;
	if (fstat(dirfd, &st) < 0) {
		error_r = "fstat(" + dir + ") failed: " + errno_text(errno) +
			": not logging";
		return false;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		error_r = dir + " is owned by uid " + std::to_string(st.st_uid) +
			", not by the mail user (uid " +
			std::to_string(geteuid()) + ") or root: not logging";
		return false;
	}
	if ((st.st_mode & S_IWOTH) != 0 && (st.st_mode & S_ISVTX) == 0) {
		error_r = dir + " is writable by everyone and not sticky "
			"(mode 1777 would be): not logging";
		return false;
	}
	return true;
}

// Why the log directory could not be opened: missing without autocreate
// means "not enabled" (a Debug line), anything else is an error.
OpenResult dir_open_failed(int err, const std::string &dir, bool autocreate,
			   std::string &message_r)
{
	if (err == ENOENT && !autocreate) {
		message_r = dir + " does not exist "
			"(rawlog_ext_autocreate=no): not logging";
		return OpenResult::not_enabled;
	}
	message_r = "open(" + dir + ") failed: " + errno_text(err) +
		": not logging";
	return OpenResult::failed;
}

// The same for settings.dir itself, whose last component is opened
// O_NOFOLLOW: a symlink there is named as such.
OpenResult log_dir_open_failed(int err, const std::string &dir,
			       bool autocreate, std::string &message_r)
{
	struct stat st;
	if ((err == ELOOP || err == ENOTDIR) &&
	    lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
		message_r = "open(" + dir + ") failed: " + errno_text(err) +
			" (a symlink is never followed for the last "
			"component): not logging";
		return OpenResult::failed;
	}
	return dir_open_failed(err, dir, autocreate, message_r);
}

// settings.dir as open() and check() use it (no trailing '/'); false
// with result_r and message_r when there is none or it is refused.
bool usable_dir(const Settings &settings, std::string &dir_r,
		OpenResult &result_r, std::string &message_r)
{
	if (settings.dir.empty()) {
		message_r = "rawlog_ext_dir is not set: not logging";
		result_r = OpenResult::not_enabled;
		return false;
	}
	if (!check_dir_path(settings.dir, message_r)) {
		result_r = OpenResult::failed;
		return false;
	}
	dir_r = settings.dir;
	while (dir_r.size() > 1 && dir_r.back() == '/')
		dir_r.pop_back();
	return true;
}

} // namespace

int open_log_dir(const std::string &path, bool autocreate)
{
	int fd = open_dir_nofollow(AT_FDCWD, path.c_str());
	if (fd != -1 || errno != ENOENT || !autocreate)
		return fd;

	// Find the deepest existing ancestor, then create downwards relative
	// to fds, so a symlink swapped in meanwhile is never followed.
	std::string existing = path;
	std::string missing;
	int parent = -1;
	while (parent == -1) {
		size_t slash = existing.find_last_of('/');
		if (slash == std::string::npos)
			return -1;
		std::string component = existing.substr(slash + 1);
		if (!component.empty())
			missing = component + (missing.empty() ? "" : "/") + missing;
		existing.erase(slash);
		// Pre-existing ancestors are the admin's tree: symlinks there
		// (e.g. /var/log -> /data/log) are followed.
		parent = open(existing.empty() ? "/" : existing.c_str(),
			      O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (parent == -1 && errno != ENOENT)
			return -1;
	}
	size_t start = 0;
	while (start < missing.size()) {
		size_t end = missing.find('/', start);
		if (end == std::string::npos)
			end = missing.size();
		std::string component = missing.substr(start, end - start);
		start = end + 1;
		if (component.empty())
			continue;
		if (mkdirat(parent, component.c_str(), 0700) < 0 &&
		    errno != EEXIST) {
			int err = errno;
			close(parent);
			errno = err;
			return -1;
		}
		int child = open_dir_nofollow(parent, component.c_str());
		int err = errno;
		close(parent);
		if (child == -1) {
			errno = err;
			return -1;
		}
		parent = child;
	}
	return parent;
}

Sink::Sink(const Settings &settings)
	: files_{ File(Formatter(settings.format == Format::transcript,
				 settings.timestamps, settings.boundaries)),
		  File(Formatter(settings.format == Format::transcript,
				 settings.timestamps, settings.boundaries)) },
	  transcript_(settings.format == Format::transcript),
	  wanted_{ settings.log_in, settings.log_out },
	  max_size_(settings.max_size), accounting_(settings.accounting),
	  max_size_is_budget_(settings.max_size_is_budget)
{
}

Sink::~Sink()
{
	try {
		end_session();
	} catch (...) {
		// A destructor must not throw; the held input is lost.
	}
	for (File &file : files_) {
		if (file.fd != -1)
			close(file.fd);
	}
	if (accounting_ != nullptr)
		accounting_->add(written_);
}

OpenResult Sink::check(const Settings &settings, std::string &message_r)
{
	std::string dir;
	OpenResult result;
	if (!usable_dir(settings, dir, result, message_r))
		return result;
	int dirfd = open_dir_nofollow(AT_FDCWD, dir.c_str());
	if (dirfd == -1 && errno == ENOENT && settings.autocreate) {
		// Created at the first session: the deepest existing
		// ancestor must let this uid do that.
		std::string existing = dir;
		for (;;) {
			size_t slash = existing.find_last_of('/');
			existing.erase(slash == 0 ? 1 : slash);
			struct stat st;
			if (stat(existing.c_str(), &st) == 0)
				break;
			if (errno != ENOENT || existing == "/") {
				message_r = "stat(" + existing + ") failed: " +
					errno_text(errno) + ": not logging";
				return OpenResult::failed;
			}
		}
		if (faccessat(AT_FDCWD, existing.c_str(), W_OK | X_OK,
			      AT_EACCESS) < 0) {
			message_r = dir + " does not exist and " + existing +
				" is not writable by uid " +
				std::to_string(geteuid()) + " (" +
				errno_text(errno) + "): not logging";
			return OpenResult::failed;
		}
		message_r = "would log into " + dir + " (created by the "
			"first session: rawlog_ext_autocreate=yes)";
		return OpenResult::opened;
	}
	if (dirfd == -1)
		return log_dir_open_failed(errno, dir, settings.autocreate,
					   message_r);
	bool owner_ok = check_dir_owner(dirfd, dir, message_r);
	close(dirfd);
	if (!owner_ok)
		return OpenResult::failed;
	if (faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) < 0) {
		message_r = dir + " is not writable by uid " +
			std::to_string(geteuid()) + " (" + errno_text(errno) +
			"): not logging";
		return OpenResult::failed;
	}
	message_r = "would log into " + dir;
	return OpenResult::opened;
}

OpenResult Sink::open(const Settings &settings, const NameParts &parts,
		      std::unique_ptr<Sink> &sink_r, std::string &message_r)
{
	std::string dir;
	OpenResult result;
	if (!usable_dir(settings, dir, result, message_r))
		return result;

	int dirfd = open_log_dir(dir, settings.autocreate);
	if (dirfd == -1)
		return log_dir_open_failed(errno, dir, settings.autocreate,
					   message_r);

	return open_files(dirfd, dir, settings, parts, sink_r, message_r);
}

OpenResult Sink::open_in(int base_fd, const std::string &base,
			 const std::string &subdir, const Settings &settings,
			 const NameParts &parts, std::unique_ptr<Sink> &sink_r,
			 std::string &message_r)
{
	int dirfd;
	std::string dir = base;
	if (subdir.empty()) {
		dirfd = fcntl(base_fd, F_DUPFD_CLOEXEC, 0);
	} else {
		// One component: never a path out of base.
		if (subdir.find('/') != std::string::npos || subdir == "." ||
		    subdir == "..") {
			message_r = "invalid subdirectory name \"" + subdir +
				"\": not logging";
			return OpenResult::failed;
		}
		dir += "/" + subdir;
		if (settings.autocreate &&
		    mkdirat(base_fd, subdir.c_str(), 0700) < 0 &&
		    errno != EEXIST)
			dirfd = -1;
		else
			dirfd = open_dir_nofollow(base_fd, subdir.c_str());
	}
	if (dirfd == -1)
		return dir_open_failed(errno, dir, settings.autocreate,
				       message_r);
	return open_files(dirfd, dir, settings, parts, sink_r, message_r);
}

OpenResult Sink::open_files(int dirfd, const std::string &dir,
			    const Settings &settings, const NameParts &parts,
			    std::unique_ptr<Sink> &sink_r,
			    std::string &message_r)
{
	if (!check_dir_owner(dirfd, dir, message_r)) {
		close(dirfd);
		return OpenResult::failed;
	}

	std::unique_ptr<Sink> sink(new Sink(settings));
	struct Wanted { Direction direction; const char *ext; };
	Wanted wanted[2];
	unsigned int wanted_count = 0;
	const bool sealed = !settings.seal_recipients.empty();
	if (sink->transcript_) {
		wanted[wanted_count++] = { Direction::in,
					   sealed ? ".log.age" : ".log" };
	} else {
		if (settings.log_in)
			wanted[wanted_count++] = { Direction::in,
						   sealed ? ".in.age" : ".in" };
		if (settings.log_out)
			wanted[wanted_count++] = { Direction::out,
						   sealed ? ".out.age" : ".out" };
	}

	int error = 0;
	std::string failed_name;
	for (unsigned int n = 0; n < max_name_collisions && error == 0; n++) {
		std::string base = log_base_name(parts, n);
		unsigned int created = 0;
		for (; created < wanted_count; created++) {
			std::string name = base + wanted[created].ext;
			// O_EXCL|O_NOFOLLOW: never append to, overwrite or
			// follow anything that is already there.
			int fd = openat(dirfd, name.c_str(),
					O_WRONLY | O_CREAT | O_EXCL |
					O_NOFOLLOW | O_CLOEXEC | O_APPEND,
					0600);
			if (fd == -1) {
				if (errno != EEXIST) {
					error = errno;
					failed_name = name;
				}
				break;
			}
			// Held until the file is closed: tells a follower
			// (rawlog-ext-view --follow) the file is still being
			// written. Logging never depends on it, and never
			// waits for it more than a moment: a follower's probe
			// (LOCK_SH, released at once) may hold it just now.
			for (int tries = 0; tries < 5; tries++) {
				if (flock(fd, LOCK_EX | LOCK_NB) == 0 ||
				    errno != EWOULDBLOCK)
					break;
				usleep(200);
			}
			File &file = sink->files_[(int)wanted[created].direction];
			file.fd = fd;
			file.path = dir + "/" + name;
		}
		if (created == wanted_count)
			break;
		// Collision or error: remove this attempt's files.
		for (unsigned int i = 0; i < created; i++) {
			File &file = sink->files_[(int)wanted[i].direction];
			(void)unlinkat(dirfd, (base + wanted[i].ext).c_str(), 0);
			close(file.fd);
			file.fd = -1;
			file.path.clear();
		}
	}
	if (error == 0 && sealed &&
	    (sink->files_[0].fd != -1 || sink->files_[1].fd != -1)) {
		// Never a log in clear instead: on any failure here the
		// files go and nothing is logged.
		std::string why;
		for (File &file : sink->files_) {
			if (file.fd == -1)
				continue;
			std::string header;
			file.seal.reset(new SealedFile());
			if (!file.seal->begin(settings.seal_recipients, header,
					      why)) {
				error = -1;
				break;
			}
			if (!write_all(file.fd, header.data(), header.size())) {
				error = errno;
				why = "write(" + file.path + ") failed: " +
					errno_text(errno);
				break;
			}
		}
		if (error != 0) {
			for (File &file : sink->files_) {
				if (file.fd == -1)
					continue;
				std::string name = file.path.substr(dir.size() + 1);
				(void)unlinkat(dirfd, name.c_str(), 0);
				close(file.fd);
				file.fd = -1;
			}
			close(dirfd);
			// A write error is the directory's, not the setting's.
			message_r = (error == -1 ? "rawlog_ext_seal_recipients: " :
				     "") + why +
				": not logging (never in clear instead)";
			return OpenResult::failed;
		}
	}
	close(dirfd);

	if (error != 0) {
		message_r = "open(" + dir + "/" + failed_name +
			") failed: " + errno_text(error) + ": not logging";
		return OpenResult::failed;
	}
	if (sink->files_[0].fd == -1 && sink->files_[1].fd == -1) {
		message_r = "no free log file name in " + dir +
			" after " + std::to_string(max_name_collisions) +
			" attempts: not logging";
		return OpenResult::failed;
	}
	for (const File &file : sink->files_) {
		if (file.fd == -1)
			continue;
		if (!sink->description_.empty())
			sink->description_ += " and ";
		sink->description_ += file.path;
	}
	sink->sealed_ = sealed;
	message_r = std::string(sealed ? "logging sealed to " : "logging to ") +
		sink->description_;
	sink_r = std::move(sink);
	return OpenResult::opened;
}

void Sink::report(Level level, std::string message)
{
	if (have_report_)
		return;
	have_report_ = true;
	report_level_ = level;
	report_ = std::move(message);
}

void Sink::stop(const std::string &why)
{
	if (stopped_)
		return;
	(void)flush_deferred();
	stopped_ = true;
	finish_sealed();
	report(Level::error, why + ": logging stopped for this session");
}

bool Sink::take_report(Level &level_r, std::string &message_r)
{
	if (!have_report_ || report_.empty())
		return false;
	level_r = report_level_;
	message_r = std::move(report_);
	report_.clear();	// have_report_ stays: at most one report
	return true;
}

struct iovec PieceWriter::iov_[PieceWriter::max_iov];
char PieceWriter::staging_[PieceWriter::staging_size];
std::string PieceWriter::sealed_;

void PieceWriter::add(const char *data, size_t size)
{
	if (error_ != 0 || size == 0)
		return;
	if (size <= max_copied) {
		if (staging_used_ + size > staging_size || iov_count_ == max_iov) {
			if (!flush_for_room())
				return;
			if (staging_used_ + size > staging_size && !flush())
				return;
		}
		char *dest = staging_ + staging_used_;
		memcpy(dest, data, size);
		staging_used_ += size;
		// Extend the previous piece when it ends right here.
		if (iov_count_ > 0 &&
		    (char *)iov_[iov_count_ - 1].iov_base +
		    iov_[iov_count_ - 1].iov_len == dest) {
			iov_[iov_count_ - 1].iov_len += size;
			return;
		}
		data = dest;
	} else if (iov_count_ == max_iov) {
		if (!flush_for_room())
			return;
	}
	iov_[iov_count_].iov_base = const_cast<char *>(data);
	iov_[iov_count_].iov_len = size;
	iov_count_++;
}

// A flush forced by the limits in the middle of a chunk keeps the last
// piece back if it was copied (a stamp, say): a crash between two writevs
// then never leaves a stamp without the line it belongs to.
bool PieceWriter::flush_for_room()
{
	if (iov_count_ < 2)
		return flush();
	const struct iovec last = iov_[iov_count_ - 1];
	char *base = static_cast<char *>(last.iov_base);
	if (base < staging_ || base >= staging_ + staging_size)
		return flush();
	iov_count_--;
	if (!flush())
		return false;
	memmove(staging_, base, last.iov_len);
	staging_used_ = last.iov_len;
	iov_[0].iov_base = staging_;
	iov_[0].iov_len = last.iov_len;
	iov_count_ = 1;
	return true;
}

bool PieceWriter::flush_sealed()
{
	sealed_.clear();
	for (unsigned int i = 0; i < iov_count_ && error_ == 0; i++) {
		if (!seal_->write(iov_[i].iov_base, iov_[i].iov_len, sealed_,
				  seal_error_)) {
			error_ = EIO;
			break;
		}
		written_ += iov_[i].iov_len;
	}
	// What was sealed is written even after a failure: the chunks before
	// it are good.
	if (!write_all(fd_, sealed_.data(), sealed_.size()) && error_ == 0)
		error_ = errno;
	// Only a full chunk leaves the writer; keep the buffer for the next.
	sealed_.clear();
	iov_count_ = 0;
	staging_used_ = 0;
	return error_ == 0;
}

bool PieceWriter::flush()
{
	if (seal_ != nullptr)
		return flush_sealed();
	struct iovec *iov = iov_;
	unsigned int count = iov_count_;
	while (count > 0) {
		ssize_t ret = writev(fd_, iov, (int)count);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			error_ = errno;
			break;
		}
		written_ += (uint64_t)ret;
		// Skip what a short write took, resume inside a piece if needed.
		size_t done = (size_t)ret;
		while (count > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			count--;
		}
		if (count > 0) {
			iov->iov_base = (char *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	iov_count_ = 0;
	staging_used_ = 0;
	return error_ == 0;
}

bool PieceWriter::finish()
{
	return error_ == 0 && (iov_count_ == 0 || flush());
}

bool Sink::write_chunk(File &file, Direction direction,
		       const unsigned char *data, size_t size,
		       const struct timeval &now)
{
	std::string &deferred = deferred_[&file - files_];
	if (sealed_ && !file.seal) {
		deferred.clear();
		return false;
	}
	writer_.begin(file.fd, file.seal.get());
	writer_(deferred.data(), deferred.size());
	file.formatter.format(writer_, direction, data, size, now);
	bool ok = end_write(file);
	// Only now: the writer may point into it, and clear() writes a
	// terminating NUL over the first byte.
	deferred.clear();
	return ok;
}

bool Sink::flush_deferred(unsigned int index)
{
	if (stopped_) {
		deferred_[index].clear();
		return false;
	}
	if (deferred_[index].empty())
		return true;
	return write_chunk(files_[index], Direction::in, nullptr, 0,
			   timeval{0, 0});
}

bool Sink::flush_deferred()
{
	bool ok = flush_deferred(0);
	return flush_deferred(1) && ok;
}

bool Sink::write_text(File &file, const std::string &text)
{
	if (sealed_ && !file.seal)
		return false;
	writer_.begin(file.fd, file.seal.get());
	writer_(text.data(), text.size());
	return end_write(file);
}

bool Sink::end_write(File &file)
{
	bool ok = writer_.finish();
	written_ += writer_.take_written();
	if (!ok) {
		stopped_ = true;
		if (!writer_.seal_error().empty())
			report(Level::error, "sealing " + file.path +
			       " failed: " + writer_.seal_error() +
			       ": logging stopped for this session");
		else
			report(Level::error, "write(" + file.path +
			       ") failed: " + errno_text(writer_.error()) +
			       ": logging stopped for this session");
		// The sealed files stay without their last chunk: they
		// read as truncated, as they are (also the one that did
		// not fail: it is not the whole session either).
		if (sealed_) {
			seal_failed_ = true;
			for (File &f : files_)
				f.seal.reset();
		}
	}
	return ok;
}

void Sink::write(Direction direction, const void *data, size_t size,
		 const struct timeval &now)
{
	if (stopped_ || size == 0 || !wanted_[(int)direction])
		return;
	File &file = file_for(direction);
	if (file.fd == -1)
		return;

	const unsigned char *bytes = (const unsigned char *)data;
	const unsigned int index = file_index(direction);
	if (max_size_ == 0 && size <= max_deferred_chunk &&
	    (holding_output_ ||
	     (direction == Direction::in && wanted_[(int)Direction::out]))) {
		// What the client sent is written with the next output (or
		// once enough gathered): commands arrive in many small reads,
		// each a write(2) otherwise. Output is held back only when
		// asked to. (Not input either when output is not logged:
		// nothing would come to write it.)
		auto append = [this, index](const char *piece, size_t n) {
			deferred_[index].append(piece, n);
		};
		file.formatter.format(append, direction, bytes, size, now);
		if (deferred_[index].size() >= max_deferred)
			(void)flush_deferred(index);
		return;
	}
	// Output writes held input first, unless output is held as well;
	// what is held for this chunk's own file goes with it.
	if (!holding_output_ && !flush_deferred(1 - index))
		return;
	if (max_size_ == 0) {
		(void)write_chunk(file, direction, bytes, size, now);
		return;
	}
	if (!flush_deferred(index))
		return;

	// With a cap, measure first (formatting without copying is cheap).
	auto formatted_size = [&](size_t prefix) {
		uint64_t total = 0;
		auto count = [&total](const char *, size_t n) { total += n; };
		Formatter probe = file.formatter;
		probe.format(count, direction, bytes, prefix, now);
		return total;
	};
	const uint64_t room = max_size_ - written_;
	if (formatted_size(size) <= room) {
		(void)write_chunk(file, direction, bytes, size, now);
		return;
	}
	// Over the cap: write the longest prefix of the chunk whose formatted
	// form still fits (once per session, so the search is cheap), then the
	// truncation marker.
	size_t lo = 0, hi = size;
	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;
		if (formatted_size(mid) <= room)
			lo = mid;
		else
			hi = mid - 1;
	}
	if (write_chunk(file, direction, bytes, lo, now))
		truncate_at_cap();
}

void Sink::truncate_at_cap()
{
	std::string marker = "*** rawlog_ext: log truncated: "
		"rawlog_ext_max_size=" + std::to_string(max_size_) +
		" bytes reached ***\n";
	// In split files the marker may follow a partial line; its own "\n"
	// in front keeps the data before it unambiguous.
	std::string split_marker = "\n" + marker;
	for (File &file : files_) {
		if (file.fd == -1)
			continue;
		const std::string &text = transcript_ ? marker : split_marker;
		if (!write_text(file, text))
			return;
	}
	stopped_ = true;
	finish_sealed();
	if (max_size_is_budget_)
		report(Level::warning, "log reached what was left of the byte "
		       "budget of doveadm rawlog enable (" +
		       std::to_string(max_size_) + " bytes): truncated, "
		       "logging stopped for this session");
	else
		report(Level::warning, "log reached rawlog_ext_max_size=" +
		       std::to_string(max_size_) + " bytes: truncated, "
		       "logging stopped for this session");
}

void Sink::end_session()
{
	(void)flush_deferred();
	finish_sealed();
}

void Sink::finish_sealed()
{
	if (abandoned_ || seal_failed_)
		return;
	for (File &file : files_) {
		if (file.fd == -1 || !file.seal || !file.seal->open())
			continue;
		std::string out, why;
		bool ok = file.seal->finish(out, why);
		if (!write_all(file.fd, out.data(), out.size())) {
			report(Level::error, "write(" + file.path + ") failed: " +
			       errno_text(errno) +
			       ": logging stopped for this session");
		} else if (!ok) {
			report(Level::error, "sealing " + file.path +
			       " failed: " + why +
			       ": logging stopped for this session");
		}
		file.seal.reset();
	}
}

} // namespace rawlog_ext
