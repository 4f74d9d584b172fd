#include "spool.hh"
#include "fd-io.hh"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace rawlog_ext {

namespace {

// An anonymous file in dir: O_TMPFILE where the filesystem has it, else a
// unique name unlinked at once.
int open_anonymous(const std::string &dir)
{
	int fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd != -1 || (errno != EOPNOTSUPP && errno != EISDIR &&
			 errno != EINVAL))
		return fd;
	std::string path = dir + "/rawlog_ext-spool.XXXXXX";
	fd = mkostemp(&path[0], O_CLOEXEC);
	if (fd != -1)
		(void)unlink(path.c_str());
	return fd;
}

} // namespace

Spool::Spool(std::string tmp_dir, size_t memory_max)
	: tmp_dir_(std::move(tmp_dir)), memory_max_(memory_max)
{
}

Spool::~Spool()
{
	if (fd_ != -1)
		(void)close(fd_);
}

void Spool::discard()
{
	memory_.clear();
	memory_.shrink_to_fit();
	if (fd_ != -1) {
		(void)close(fd_);
		fd_ = -1;
	}
	size_ = 0;
}

void Spool::set_failed(const std::string &what, int error)
{
	error_ = what + ": " + strerror(error);
	memory_.clear();
	memory_.shrink_to_fit();
	if (fd_ != -1) {
		(void)close(fd_);
		fd_ = -1;
	}
}

bool Spool::move_to_file()
{
	fd_ = open_anonymous(tmp_dir_);
	if (fd_ == -1) {
		set_failed("creating a temporary file in " + tmp_dir_, errno);
		return false;
	}
	if (!write_all(fd_, (const unsigned char *)memory_.data(),
		       memory_.size())) {
		set_failed("writing a temporary file in " + tmp_dir_, errno);
		return false;
	}
	memory_.clear();
	memory_.shrink_to_fit();
	return true;
}

bool Spool::append(const unsigned char *data, size_t size)
{
	if (failed())
		return false;
	if (fd_ == -1 && memory_.size() + size > memory_max_ &&
	    !move_to_file())
		return false;
	if (fd_ == -1) {
		memory_.append((const char *)data, size);
	} else if (!write_all(fd_, data, size)) {
		set_failed("writing a temporary file in " + tmp_dir_, errno);
		return false;
	}
	size_ += size;
	return true;
}

bool Spool::read(uint64_t offset, uint64_t length, const Output &out)
{
	if (failed() || offset > size_ || length > size_ - offset)
		return false;
	if (fd_ == -1) {
		if (length > 0)
			out((const unsigned char *)memory_.data() + offset,
			    (size_t)length);
		return true;
	}
	unsigned char buf[65536];
	while (length > 0) {
		size_t want = length < sizeof(buf) ? (size_t)length :
			sizeof(buf);
		ssize_t ret = pread(fd_, buf, want, (off_t)offset);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			set_failed("reading a temporary file in " + tmp_dir_,
			     ret < 0 ? errno : EIO);
			return false;
		}
		out(buf, (size_t)ret);
		offset += (uint64_t)ret;
		length -= (uint64_t)ret;
	}
	return true;
}

} // namespace rawlog_ext
