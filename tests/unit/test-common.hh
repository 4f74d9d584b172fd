// Test helpers: a temporary directory that removes itself, cmocka fixtures
// that own one, whole-file / directory readers, fixed log name parts.
#ifndef RAWLOG_EXT_TEST_COMMON_HH
#define RAWLOG_EXT_TEST_COMMON_HH

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka 1.1 has no extern "C" of its own.
extern "C" {
#include <cmocka.h>
}

#include "core/naming.hh"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

class TmpDir {
public:
	TmpDir()
	{
		char path[] = "/tmp/rawlog-ext-test.XXXXXX";
		if (mkdtemp(path) == nullptr)
			fail_msg("mkdtemp(%s) failed: %s", path, strerror(errno));
		path_ = path;
	}
	~TmpDir()
	{
		// FTW_PHYS: never follow the symlinks the tests plant.
		(void)nftw(path_.c_str(), remove_entry, 16,
			   FTW_DEPTH | FTW_PHYS);
	}
	TmpDir(const TmpDir &) = delete;
	TmpDir &operator=(const TmpDir &) = delete;

	const std::string &path() const { return path_; }
	std::string path(const std::string &name) const
	{ return path_ + "/" + name; }

private:
	static int remove_entry(const char *path, const struct stat *,
				int, struct FTW *)
	{
		(void)remove(path);
		return 0;
	}

	std::string path_;
};

// Fixtures: a fresh TmpDir in *state for each test. cmocka runs the
// teardown even when a failed assertion longjmp()ed out of the test.
// The fixture's directory, from a test's cmocka state.
inline TmpDir &tmpdir(void **state)
{
	return *static_cast<TmpDir *>(*state);
}

// Fixed name parts, so tests know each log file's name.
inline rawlog_ext::NameParts fixed_parts(const char *hostname = "host")
{
	rawlog_ext::NameParts parts;
	parts.time = 1700000000;
	parts.service = "imap";
	parts.session = "sess";
	parts.pid = 1234;
	parts.hostname = hostname;
	return parts;
}

// Printable form of bytes, for failure messages.
inline std::string escape(const std::string &s)
{
	std::string out;
	for (unsigned char c : s) {
		if (c == '\n')
			out += "\\n";
		else if (c == '\r')
			out += "\\r";
		else if (c >= 0x20 && c < 0x7f && c != '\\')
			out += (char)c;
		else {
			char buf[8];
			snprintf(buf, sizeof(buf), "\\x%02x", c);
			out += buf;
		}
	}
	return out;
}

inline void assert_bytes_equal(const std::string &got, const std::string &expected)
{
	if (got != expected)
		fail_msg("got \"%s\"\n expected \"%s\"", escape(got).c_str(),
			 escape(expected).c_str());
}

inline int tmpdir_setup(void **state)
{
	*state = new TmpDir();
	return 0;
}

inline int tmpdir_teardown(void **state)
{
	delete static_cast<TmpDir *>(*state);
	return 0;
}

inline std::string read_file(const std::string &path)
{
	int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		fail_msg("open(%s) failed: %s", path.c_str(), strerror(errno));
	std::string data;
	char buf[4096];
	ssize_t ret;
	while ((ret = read(fd, buf, sizeof(buf))) > 0)
		data.append(buf, (size_t)ret);
	int err = errno;
	close(fd);
	if (ret < 0)
		fail_msg("read(%s) failed: %s", path.c_str(), strerror(err));
	return data;
}

// Names in path except "." and "..", sorted.
inline std::vector<std::string> list_dir(const std::string &path)
{
	DIR *dir = opendir(path.c_str());
	if (dir == nullptr)
		fail_msg("opendir(%s) failed: %s", path.c_str(), strerror(errno));
	std::vector<std::string> names;
	while (struct dirent *d = readdir(dir)) {
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			names.push_back(d->d_name);
	}
	closedir(dir);
	std::sort(names.begin(), names.end());
	return names;
}

#endif
