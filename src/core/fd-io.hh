// Small POSIX I/O helpers shared by the core's writers.
#ifndef RAWLOG_EXT_FD_IO_HH
#define RAWLOG_EXT_FD_IO_HH

#include <cerrno>
#include <cstddef>
#include <unistd.h>

namespace rawlog_ext {

// All of data, despite short writes and EINTR; false with errno set.
inline bool write_all(int fd, const void *data, size_t size)
{
	const char *p = static_cast<const char *>(data);
	while (size > 0) {
		ssize_t ret = write(fd, p, size);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += ret;
		size -= (size_t)ret;
	}
	return true;
}

} // namespace rawlog_ext

#endif
