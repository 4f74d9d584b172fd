// Sink: safe file creation, name collisions, byte-exact writes, the size
// cap and write errors, all against a real temporary directory.
#include "test-common.hh"

#include "core/sink.hh"

#include <sys/file.h>
#include <sys/mount.h>

using namespace rawlog_ext;

namespace {

const struct timeval t1 = { 1700000000, 5 };
const std::string s1 = "1700000000.000005 ";

const std::string base = log_base_name(fixed_parts());
const std::string base_1 = log_base_name(fixed_parts(), 1);

// Timestamps off, so file contents are exactly the data.
Settings plain_settings(const std::string &dir)
{
	Settings set;
	set.dir = dir;
	set.timestamps = Timestamps::none;
	return set;
}

std::unique_ptr<Sink> open_ok(const Settings &set)
{
	std::unique_ptr<Sink> sink;
	std::string message;
	OpenResult result = Sink::open(set, fixed_parts(), sink, message);
	if (result != OpenResult::opened || sink == nullptr)
		fail_msg("Sink::open(%s) failed: %s", set.dir.c_str(),
			 message.c_str());
	return sink;
}

OpenResult open_fails(const Settings &set, std::string &message_r)
{
	std::unique_ptr<Sink> sink;
	OpenResult result = Sink::open(set, fixed_parts(), sink, message_r);
	if (result == OpenResult::opened || sink != nullptr)
		fail_msg("Sink::open(%s) unexpectedly opened", set.dir.c_str());
	return result;
}

void put(Sink &sink, Direction direction, const std::string &data)
{
	sink.write(direction, data.data(), data.size(), t1);
}

void assert_contains(const std::string &text, const std::string &part)
{
	if (text.find(part) == std::string::npos)
		fail_msg("\"%s\" does not contain \"%s\"", text.c_str(), part.c_str());
}

void assert_names(const std::string &dir, const std::vector<std::string> &names)
{
	std::vector<std::string> got = list_dir(dir);
	if (got != names) {
		std::string list;
		for (const std::string &name : got)
			list += " " + name;
		fail_msg("%s holds:%s", dir.c_str(), list.c_str());
	}
}

void assert_mode(const std::string &path, mode_t type, mode_t mode)
{
	struct stat st;
	if (lstat(path.c_str(), &st) < 0)
		fail_msg("lstat(%s) failed: %s", path.c_str(), strerror(errno));
	if ((st.st_mode & S_IFMT) != type || (st.st_mode & 0777) != mode)
		fail_msg("%s: mode %o, expected %o", path.c_str(),
			 (unsigned int)st.st_mode, (unsigned int)(type | mode));
}

std::string make_dir(const std::string &path)
{
	if (mkdir(path.c_str(), 0755) < 0)
		fail_msg("mkdir(%s) failed: %s", path.c_str(), strerror(errno));
	return path;
}

void make_file(const std::string &path)
{
	int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd == -1)
		fail_msg("creat(%s) failed: %s", path.c_str(), strerror(errno));
	close(fd);
}

void make_symlink(const std::string &target, const std::string &path)
{
	if (symlink(target.c_str(), path.c_str()) < 0)
		fail_msg("symlink(%s) failed: %s", path.c_str(), strerror(errno));
}

bool exists(const std::string &path)
{
	struct stat st;
	return lstat(path.c_str(), &st) == 0;
}

std::string all_bytes()
{
	std::string data;
	for (int i = 0; i < 256; i++)
		data += (char)i;
	return data;
}

std::string marker(uint64_t max_size)
{
	return "*** rawlog_ext: log truncated: rawlog_ext_max_size=" +
		std::to_string(max_size) + " bytes reached ***\n";
}

// A follower (rawlog-ext-view --follow) tells a live file by its lock:
// held while the sink has the file open, gone once it is closed.
bool is_locked(const std::string &path)
{
	int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
	assert_true(fd != -1);
	bool locked = flock(fd, LOCK_SH | LOCK_NB) != 0;
	if (locked)
		assert_int_equal(errno, EWOULDBLOCK);
	close(fd);
	return locked;
}

void test_sink_files_are_locked_while_open(void **state)
{
	for (Format format : { Format::split, Format::transcript }) {
		std::string dir = make_dir(tmpdir(state).path(
			format == Format::split ? "split" : "transcript"));
		Settings set = plain_settings(dir);
		set.format = format;
		std::unique_ptr<Sink> sink = open_ok(set);
		std::vector<std::string> paths;
		for (const char *ext : format == Format::split ?
		     std::vector<const char *>{ ".in", ".out" } :
		     std::vector<const char *>{ ".log" })
			paths.push_back(dir + "/" + base + ext);
		put(*sink, Direction::in, "a1 NOOP\r\n");
		for (const std::string &p : paths)
			assert_true(is_locked(p));
		sink.reset();
		for (const std::string &p : paths)
			assert_false(is_locked(p));
	}
}

void test_sink_creates_files_for_format_and_direction(void **state)
{
	static const struct {
		Format format;
		bool log_in, log_out;
		std::vector<std::string> exts;
	} cases[] = {
		{ Format::split, true, true, { ".in", ".out" } },
		{ Format::split, true, false, { ".in" } },
		{ Format::split, false, true, { ".out" } },
		{ Format::transcript, true, true, { ".log" } },
		{ Format::transcript, true, false, { ".log" } },
		{ Format::transcript, false, true, { ".log" } },
	};
	unsigned int i = 0;
	for (const auto &c : cases) {
		std::string dir = make_dir(tmpdir(state).path("case" + std::to_string(i++)));
		Settings set = plain_settings(dir);
		set.format = c.format;
		set.log_in = c.log_in;
		set.log_out = c.log_out;

		std::unique_ptr<Sink> sink;
		std::string message;
		assert_true(Sink::open(set, fixed_parts(), sink, message) ==
			    OpenResult::opened);
		std::vector<std::string> names;
		std::string description;
		for (const std::string &ext : c.exts) {
			names.push_back(base + ext);
			assert_mode(dir + "/" + base + ext, S_IFREG, 0600);
			description += (description.empty() ? "" : " and ") +
				dir + "/" + base + ext;
		}
		assert_names(dir, names);
		assert_string_equal(sink->description().c_str(), description.c_str());
		assert_string_equal(message.c_str(), ("logging to " + description).c_str());
		assert_int_equal(sink->logs(Direction::in), c.log_in);
		assert_int_equal(sink->logs(Direction::out), c.log_out);

		// An unwanted direction is dropped, also in a shared .log.
		put(*sink, Direction::in, "in\n");
		put(*sink, Direction::out, "out\n");
		assert_true(sink->flush_deferred());
		if (c.format == Format::transcript) {
			assert_string_equal(read_file(dir + "/" + base + ".log").c_str(),
					    (std::string(c.log_in ? "I: in\n" : "") +
					     (c.log_out ? "O: out\n" : "")).c_str());
		} else {
			if (c.log_in)
				assert_string_equal(read_file(dir + "/" + base + ".in").c_str(), "in\n");
			if (c.log_out)
				assert_string_equal(read_file(dir + "/" + base + ".out").c_str(), "out\n");
		}
	}
}

void test_sink_without_dir_is_not_enabled(void **)
{
	std::string message;
	assert_true(open_fails(plain_settings(""), message) ==
		    OpenResult::not_enabled);
	assert_string_equal(message.c_str(), "rawlog_ext_dir is not set: not logging");
}

void test_sink_missing_dir_without_autocreate_is_not_enabled(void **state)
{
	std::string dir = tmpdir(state).path("missing/sub");
	std::string message;
	assert_true(open_fails(plain_settings(dir), message) ==
		    OpenResult::not_enabled);
	assert_string_equal(message.c_str(), (dir + " does not exist "
			    "(rawlog_ext_autocreate=no): not logging").c_str());
	assert_names(tmpdir(state).path(), {});
}

void test_sink_autocreate_makes_nested_dirs_0700(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	// With and without a trailing slash; "x" already exists.
	make_dir(tmp.path("x"));
	static const struct {
		const char *dir;
		std::vector<std::string> created;
	} cases[] = {
		{ "a/b/c", { "a", "a/b", "a/b/c" } },
		{ "x/y/z/", { "x/y", "x/y/z" } },
	};
	for (const auto &c : cases) {
		Settings set = plain_settings(tmp.path(c.dir));
		set.autocreate = true;
		std::unique_ptr<Sink> sink = open_ok(set);
		for (const std::string &dir : c.created)
			assert_mode(tmp.path(dir), S_IFDIR, 0700);
		assert_names(tmp.path(c.created.back()), { base + ".in", base + ".out" });
	}
	assert_mode(tmp.path("x"), S_IFDIR, 0755);
}

void test_sink_autocreate_below_symlinked_existing_dir(void **state)
{
	// Pre-existing ancestors are the admin's tree: /var/log -> /data/log
	// must keep working for new users.
	const TmpDir &tmp = tmpdir(state);
	make_dir(tmp.path("real"));
	make_symlink(tmp.path("real"), tmp.path("base"));
	Settings set = plain_settings(tmp.path("base/user"));
	set.autocreate = true;
	std::unique_ptr<Sink> sink = open_ok(set);
	assert_mode(tmp.path("real/user"), S_IFDIR, 0700);
}

void test_sink_trailing_slash_gives_clean_paths(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	Settings set = plain_settings(tmp.path("") + "/");
	std::unique_ptr<Sink> sink = open_ok(set);
	assert_true(sink->description().find("//") == std::string::npos);
}

void test_sink_refuses_dir_of_another_user_or_world_writable(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	std::string message;

	// Owned by neither us nor root (the tests run as root: use uid 1).
	std::string foreign = make_dir(tmp.path("foreign"));
	assert_int_equal(chown(foreign.c_str(), 1, 1), 0);
	if (geteuid() != 1) {
		assert_int_equal((int)open_fails(plain_settings(foreign), message),
				 (int)OpenResult::failed);
		assert_contains(message, "is owned by uid 1");
		assert_names(foreign, {});
	}

	std::string open_dir = make_dir(tmp.path("open"));
	assert_int_equal(chmod(open_dir.c_str(), 0777), 0);
	assert_int_equal((int)open_fails(plain_settings(open_dir), message),
			 (int)OpenResult::failed);
	assert_contains(message, "not sticky");
	assert_names(open_dir, {});

	// The sticky bit keeps others from removing our files: accepted.
	assert_int_equal(chmod(open_dir.c_str(), 01777), 0);
	std::unique_ptr<Sink> sink = open_ok(plain_settings(open_dir));
}

void test_sink_refuses_symlink_as_dir(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	std::string target = make_dir(tmp.path("target"));
	make_symlink(target, tmp.path("link"));
	make_symlink(tmp.path("nowhere"), tmp.path("dangling"));
	static const struct {
		const char *dir;
		bool autocreate;
	} cases[] = {
		{ "link", false },
		{ "link", true },
		{ "dangling", false },
		{ "dangling", true },
	};
	for (const auto &c : cases) {
		Settings set = plain_settings(tmp.path(c.dir));
		set.autocreate = c.autocreate;
		std::string message;
		assert_true(open_fails(set, message) == OpenResult::failed);
		assert_contains(message, "open(" + set.dir + ") failed: ");
		assert_contains(message, "symlink");
	}
	assert_names(target, {});
	assert_false(exists(tmp.path("nowhere")));
}

void test_sink_skips_entry_planted_at_log_name(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	enum class Kind { symlink_to_file, dangling_symlink, regular_file };
	static const struct {
		const char *ext;	// which of the two names is taken
		const char *other;
		Kind kind;
	} cases[] = {
		{ ".in", ".out", Kind::symlink_to_file },
		{ ".in", ".out", Kind::dangling_symlink },
		{ ".in", ".out", Kind::regular_file },
		// .in is created first, then must be removed again.
		{ ".out", ".in", Kind::symlink_to_file },
		{ ".out", ".in", Kind::dangling_symlink },
		{ ".out", ".in", Kind::regular_file },
	};
	unsigned int i = 0;
	for (const auto &c : cases) {
		std::string n = std::to_string(i++);
		std::string dir = make_dir(tmp.path("case" + n));
		std::string victim = tmp.path("victim" + n);
		std::string planted = dir + "/" + base + c.ext;
		switch (c.kind) {
		case Kind::symlink_to_file:
			make_file(victim);
			make_symlink(victim, planted);
			break;
		case Kind::dangling_symlink:
			make_symlink(victim, planted);
			break;
		case Kind::regular_file:
			make_file(planted);
			break;
		}

		std::unique_ptr<Sink> sink = open_ok(plain_settings(dir));
		put(*sink, Direction::in, "secret in\n");
		put(*sink, Direction::out, "secret out\n");
		std::vector<std::string> names = { base + c.ext, base_1 + ".in",
						   base_1 + ".out" };
		std::sort(names.begin(), names.end());
		assert_names(dir, names);
		assert_false(exists(dir + "/" + base + c.other));
		assert_string_equal(read_file(dir + "/" + base_1 + ".in").c_str(),
				    "secret in\n");
		if (c.kind == Kind::regular_file) {
			assert_mode(planted, S_IFREG, 0644);
			assert_string_equal(read_file(planted).c_str(), "");
		} else {
			assert_mode(planted, S_IFLNK, 0777);
		}
		if (c.kind == Kind::symlink_to_file)
			assert_string_equal(read_file(victim).c_str(), "");
		if (c.kind == Kind::dangling_symlink)
			assert_false(exists(victim));
	}
}

void test_sink_uses_suffix_2_when_0_and_1_are_taken(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	std::vector<std::string> taken = { base + ".in", base + ".out",
					   base_1 + ".in", base_1 + ".out" };
	for (const std::string &name : taken)
		make_file(tmp.path(name));
	std::unique_ptr<Sink> sink = open_ok(plain_settings(tmp.path()));
	std::string base_2 = log_base_name(fixed_parts(), 2);
	assert_string_equal(sink->description().c_str(),
			    (tmp.path(base_2 + ".in") + " and " +
			     tmp.path(base_2 + ".out")).c_str());
	taken.push_back(base_2 + ".in");
	taken.push_back(base_2 + ".out");
	std::sort(taken.begin(), taken.end());
	assert_names(tmp.path(), taken);
}

void test_sink_fails_after_100_name_collisions(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	// Only .out is taken: each attempt creates .in and must remove it.
	std::vector<std::string> taken;
	for (unsigned int n = 0; n < 100; n++) {
		taken.push_back(log_base_name(fixed_parts(), n) + ".out");
		make_file(tmp.path(taken.back()));
	}
	std::sort(taken.begin(), taken.end());
	std::string message;
	assert_true(open_fails(plain_settings(tmp.path()), message) ==
		    OpenResult::failed);
	assert_string_equal(message.c_str(), ("no free log file name in " +
			    tmp.path() + " after 100 attempts: not logging").c_str());
	assert_names(tmp.path(), taken);
}

void test_sink_rejects_dir_with_dot_components(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	make_dir(tmp.path("a"));
	const struct {
		std::string dir;
		const char *error;
	} cases[] = {
		{ tmp.path("a/../b"), "contains a '..' component" },
		{ tmp.path("a/./b"), "contains a '.' component" },
		{ tmp.path("a/.."), "contains a '..' component" },
		{ "relative/dir", "is not an absolute path" },
	};
	for (const auto &c : cases) {
		Settings set = plain_settings(c.dir);
		set.autocreate = true;
		std::string message;
		assert_true(open_fails(set, message) == OpenResult::failed);
		assert_contains(message, "rawlog_ext_dir=" + c.dir + " " + c.error);
	}
	assert_names(tmp.path(), { "a" });
	assert_names(tmp.path("a"), {});
}

void test_sink_dir_below_regular_file_fails_with_enotdir(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	make_file(tmp.path("file"));
	for (bool autocreate : { false, true }) {
		Settings set = plain_settings(tmp.path("file/sub"));
		set.autocreate = autocreate;
		std::string message;
		assert_true(open_fails(set, message) == OpenResult::failed);
		assert_contains(message, "open(" + set.dir + ") failed: " +
				strerror(ENOTDIR));
	}
	assert_names(tmp.path(), { "file" });
}

// Below a directory opened earlier (as a login process does before its
// chroot): in it, or in one subdirectory, never elsewhere.
void test_sink_open_in_base_fd(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	int base_fd = open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY);
	assert_true(base_fd != -1);
	Settings set = plain_settings("");
	std::unique_ptr<Sink> sink;
	std::string message;

	assert_true(Sink::open_in(base_fd, "/base", "", set, fixed_parts(),
				  sink, message) == OpenResult::opened);
	assert_string_equal(message.c_str(), ("logging to /base/" + base +
			    ".in and /base/" + base + ".out").c_str());
	sink.reset();
	assert_true(Sink::open_in(base_fd, "/base", "alice", set, fixed_parts(),
				  sink, message) == OpenResult::not_enabled);
	set.autocreate = true;
	assert_true(Sink::open_in(base_fd, "/base", "alice", set, fixed_parts(),
				  sink, message) == OpenResult::opened);
	assert_mode(tmp.path("alice"), S_IFDIR, 0700);
	assert_names(tmp.path("alice"), { base + ".in", base + ".out" });
	sink.reset();
	// A symlink as the subdirectory is not followed.
	assert_int_equal(symlink(tmp.path("alice").c_str(),
				 tmp.path("link").c_str()), 0);
	assert_true(Sink::open_in(base_fd, "/base", "link", set, fixed_parts(),
				  sink, message) == OpenResult::failed);
	for (const char *bad : { "..", ".", "a/b" }) {
		assert_true(Sink::open_in(base_fd, "/base", bad, set,
					  fixed_parts(), sink, message) ==
			    OpenResult::failed);
		assert_contains(message, "invalid subdirectory name");
	}
	assert_true(sink == nullptr);
	close(base_fd);
}

// Input waits for the next output (or 16 KiB, or the end): one write for
// a burst of small reads. Output is never held back.
void test_sink_input_waits_for_output(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	for (bool transcript : { false, true }) {
		Settings set = plain_settings(tmp.path(transcript ? "t" : "s"));
		make_dir(set.dir);
		if (transcript)
			set.format = Format::transcript;
		std::string in_path = set.dir + "/" + base + (transcript ? ".log" : ".in");
		std::string out_path = set.dir + "/" + base + (transcript ? ".log" : ".out");
		std::unique_ptr<Sink> sink = open_ok(set);
		put(*sink, Direction::in, "a NOOP\r\n");
		put(*sink, Direction::in, "b NOOP\r\n");
		assert_string_equal(read_file(in_path).c_str(), "");
		assert_int_equal(sink->bytes_written(), 0);
		put(*sink, Direction::out, "a OK\r\n");
		if (transcript) {
			assert_string_equal(read_file(in_path).c_str(),
				"I: a NOOP\r\nI: b NOOP\r\nO: a OK\r\n");
		} else {
			assert_string_equal(read_file(in_path).c_str(),
					    "a NOOP\r\nb NOOP\r\n");
			assert_string_equal(read_file(out_path).c_str(), "a OK\r\n");
		}
		// Enough of it is written without waiting for output.
		std::string line(1000, 'x');
		line += "\n";
		for (int i = 0; i < 17; i++)
			put(*sink, Direction::in, line);
		assert_true(read_file(in_path).size() >= 16 * 1024);
		// The end writes the rest.
		put(*sink, Direction::in, "tail\n");
		sink.reset();
		std::string all = read_file(in_path);
		assert_true(all.size() > 17 * 1001);
		assert_string_equal(all.substr(all.size() - (transcript ? 8 : 5)).c_str(),
				    transcript ? "I: tail\n" : "tail\n");
	}
	// Without output in the log, nothing would write it: no waiting.
	Settings set = plain_settings(tmp.path("in-only"));
	make_dir(set.dir);
	set.log_out = false;
	std::unique_ptr<Sink> sink = open_ok(set);
	put(*sink, Direction::in, "a NOOP\r\n");
	assert_string_equal(read_file(set.dir + "/" + base + ".in").c_str(),
			    "a NOOP\r\n");
}

// hold_output(): a replay's short pieces wait for release_output(); a
// long chunk takes what is held for its own file with it, not the other
// file's; the bytes are those of the same writes unheld.
void test_sink_held_output_waits_for_release(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	std::string message;
	for (int i = 0; i < 300; i++)
		message += "line " + std::to_string(i) + " of the message\r\n";
	message += "1234 starts with a digit\r\n.\r\n";
	auto replay = [&](Sink &sink) {
		put(sink, Direction::in, "MAIL FROM:<a@b>\r\n");
		put(sink, Direction::out, "250 2.1.0 OK\r\n");
		put(sink, Direction::in, "RCPT TO:<c@d>\r\n");
		put(sink, Direction::out, "250 2.1.5 OK\r\n");
		put(sink, Direction::in, "DATA\r\n");
		put(sink, Direction::out, "354 OK\r\n");
		put(sink, Direction::in, message);
	};
	const Timestamps stamps[] = { Timestamps::none, Timestamps::lines,
				      Timestamps::chunks };
	int n = 0;
	for (bool transcript : { false, true }) {
		for (Timestamps ts : stamps) {
			std::string name = "h" + std::to_string(n++);
			Settings set = plain_settings(tmp.path(name));
			set.timestamps = ts;
			set.boundaries = ts == Timestamps::chunks;
			if (transcript)
				set.format = Format::transcript;
			Settings ref_set = set;
			ref_set.dir = tmp.path(name + "-ref");
			make_dir(set.dir);
			make_dir(ref_set.dir);
			const char *in_ext = transcript ? ".log" : ".in";
			const char *out_ext = transcript ? ".log" : ".out";
			std::string in_path = set.dir + "/" + base + in_ext;
			std::string out_path = set.dir + "/" + base + out_ext;

			std::unique_ptr<Sink> ref = open_ok(ref_set);
			replay(*ref);
			put(*ref, Direction::out, "250 2.0.0 saved\r\n");
			ref.reset();

			std::unique_ptr<Sink> sink = open_ok(set);
			sink->hold_output();
			replay(*sink);
			if (transcript) {
				// One file: everything went with the message.
				assert_true(read_file(in_path).size() >
					    message.size());
			} else {
				assert_true(read_file(in_path).size() >
					    message.size());
				assert_string_equal(read_file(out_path).c_str(), "");
			}
			assert_true(sink->release_output());
			std::string out_now = read_file(out_path);
			assert_true(out_now.find("354 OK") != std::string::npos);
			// Output after the release is written at once.
			put(*sink, Direction::out, "250 2.0.0 saved\r\n");
			assert_true(read_file(out_path).size() > out_now.size());
			uint64_t written = sink->bytes_written();
			sink.reset();
			std::string ref_in = read_file(ref_set.dir + "/" + base + in_ext);
			assert_true(read_file(in_path) == ref_in);
			if (!transcript) {
				std::string ref_out = read_file(ref_set.dir + "/" +
								base + out_ext);
				assert_true(read_file(out_path) == ref_out);
				assert_int_equal(written, ref_in.size() + ref_out.size());
			} else {
				assert_int_equal(written, ref_in.size());
			}
		}
	}
	// With a cap, nothing is held (each chunk is measured as it comes).
	Settings set = plain_settings(tmp.path("capped"));
	set.max_size = 1000;
	make_dir(set.dir);
	std::unique_ptr<Sink> sink = open_ok(set);
	sink->hold_output();
	put(*sink, Direction::out, "250 OK\r\n");
	assert_string_equal(read_file(set.dir + "/" + base + ".out").c_str(),
			    "250 OK\r\n");
	// Held pieces are written at the end of the session too.
	Settings end_set = plain_settings(tmp.path("end"));
	make_dir(end_set.dir);
	sink = open_ok(end_set);
	sink->hold_output();
	put(*sink, Direction::in, "QUIT\r\n");
	put(*sink, Direction::out, "221 Bye\r\n");
	sink->end_session();
	assert_string_equal(read_file(end_set.dir + "/" + base + ".in").c_str(),
			    "QUIT\r\n");
	assert_string_equal(read_file(end_set.dir + "/" + base + ".out").c_str(),
			    "221 Bye\r\n");
}

void test_sink_write_is_byte_exact(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	std::unique_ptr<Sink> sink = open_ok(plain_settings(tmp.path()));
	std::string data = all_bytes() + "\r\n\n\r" + all_bytes();
	std::string in, out;
	for (size_t pos = 0, n = 1; pos < data.size(); pos += n, n = n % 17 + 1) {
		std::string chunk = data.substr(pos, n);
		put(*sink, Direction::in, chunk);
		in += chunk;
		// Out gets the same bytes reversed per chunk.
		std::string rchunk(chunk.rbegin(), chunk.rend());
		put(*sink, Direction::out, rchunk);
		out += rchunk;
	}
	put(*sink, Direction::in, "");
	assert_true(read_file(tmp.path(base + ".in")) == in);
	assert_true(read_file(tmp.path(base + ".out")) == out);
	assert_int_equal(sink->bytes_written(), in.size() + out.size());
	Sink::Level level;
	std::string message;
	assert_false(sink->take_report(level, message));
}

void test_sink_large_chunks_match_the_formatter(void **state)
{
	// Thousands of pieces per chunk, long and short lines: the writer's
	// batching (staging buffer, iovec limit) must not change a byte. (With
	// chunk stamps, every fifth line starts with a digit and gets one.)
	const TmpDir &tmp = tmpdir(state);
	for (int variant = 0; variant < 4; variant++) {
		const bool transcript = variant % 2 == 1, per_chunk = variant >= 2;
		Settings set = plain_settings(tmp.path("v" + std::to_string(variant)));
		make_dir(set.dir);
		set.timestamps = per_chunk ? Timestamps::chunks : Timestamps::lines;
		set.boundaries = true;
		if (transcript)
			set.format = Format::transcript;
		std::unique_ptr<Sink> sink = open_ok(set);

		std::string chunk;
		for (unsigned int i = 0; i < 5000; i++) {
			chunk.append((i * 7919) % 700,
				     i % 5 == 0 ? (char)('0' + i % 10) :
				     (char)('a' + i % 26));
			chunk += i % 3 == 0 ? "\r\n" : "\n";
		}
		chunk += "partial";
		const struct timeval now = { 1700000000, 42 };
		std::string expected;
		Formatter formatter(transcript, set.timestamps, true);
		for (int round = 0; round < 3; round++) {
			sink->write(Direction::in, chunk.data(), chunk.size(), now);
			formatter.format(expected, Direction::in,
					 (const unsigned char *)chunk.data(),
					 chunk.size(), now);
		}
		std::string path = set.dir + "/" + base + (transcript ? ".log" : ".in");
		assert_true(read_file(path) == expected);
		assert_int_equal(sink->bytes_written(), expected.size());
	}
}

void test_sink_split_keeps_line_state_per_direction(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	Settings set = plain_settings(tmp.path());
	set.timestamps = Timestamps::lines;
	std::unique_ptr<Sink> sink = open_ok(set);
	// The out line in between must not make "b\n" look like a new line.
	put(*sink, Direction::in, "a");
	put(*sink, Direction::out, "x\n");
	put(*sink, Direction::in, "b\n");
	put(*sink, Direction::out, "y");
	assert_string_equal(read_file(tmp.path(base + ".in")).c_str(),
			    (s1 + "ab\n").c_str());
	assert_string_equal(read_file(tmp.path(base + ".out")).c_str(),
			    (s1 + "x\n" + s1 + "y").c_str());
}

// What a file holds if its direction's data is cut after `keep` bytes,
// counting chunks as the sink got them.
std::string formatted_prefix(const Settings &set,
			     const std::vector<std::string> &chunks,
			     size_t keep)
{
	Formatter formatter(set.format == Format::transcript, set.timestamps,
			    set.boundaries);
	std::string out;
	for (const std::string &chunk : chunks) {
		size_t n = std::min(keep, chunk.size());
		formatter.format(out, Direction::in,
				 (const unsigned char *)chunk.data(), n, t1);
		keep -= n;
	}
	return out;
}

void test_sink_max_size_split_caps_total_and_marks_every_file(void **state)
{
	static const struct {
		Timestamps timestamps;
		bool boundaries;
		uint64_t max_size;
	} cases[] = {
		{ Timestamps::none, false, 100 },
		{ Timestamps::none, false, 1 },
		{ Timestamps::lines, false, 100 },
		{ Timestamps::lines, false, 333 },
		{ Timestamps::none, true, 100 },
		{ Timestamps::lines, true, 250 },
		{ Timestamps::chunks, false, 333 },
		{ Timestamps::chunks, true, 250 },
	};
	const std::string data = "a1 LOGIN user pass\r\n" + all_bytes() +
		"\n\nshort\nlonger line here\n";
	unsigned int i = 0;
	for (const auto &c : cases) {
		i++;
		std::string dir = make_dir(tmpdir(state).path("case" + std::to_string(i)));
		Settings set = plain_settings(dir);
		set.timestamps = c.timestamps;
		set.boundaries = c.boundaries;
		set.max_size = c.max_size;
		std::unique_ptr<Sink> sink = open_ok(set);

		// Alternate directions with irregular chunk sizes.
		std::vector<std::string> chunks[2];
		for (size_t pos = 0, n = 1; pos < data.size(); pos += n, n = n % 11 + 1) {
			int d = chunks[0].size() > chunks[1].size();
			chunks[d].push_back(data.substr(pos, n));
			put(*sink, (Direction)d, chunks[d].back());
		}

		std::string split_marker = "\n" + marker(c.max_size);
		uint64_t total = 0, before_marker = 0;
		for (int d = 0; d < 2; d++) {
			std::string log = read_file(dir + "/" + base +
						    (d == 0 ? ".in" : ".out"));
			total += log.size();
			if (log.size() < split_marker.size() ||
			    log.compare(log.size() - split_marker.size(),
					split_marker.size(), split_marker) != 0)
				fail_msg("case %u: no marker at the end of %s", i,
					 d == 0 ? ".in" : ".out");
			std::string kept = log.substr(0, log.size() - split_marker.size());
			before_marker += kept.size();
			// A whole prefix of the data: no half stamp or record.
			bool found = false;
			for (size_t keep = 0; keep <= data.size() && !found; keep++)
				found = formatted_prefix(set, chunks[d], keep) == kept;
			if (!found)
				fail_msg("case %u: %s is not a formatted prefix",
					 i, d == 0 ? ".in" : ".out");
		}
		assert_in_range(before_marker, 0, c.max_size);
		// Plain bytes can fill the cap exactly.
		if (c.timestamps == Timestamps::none && !c.boundaries)
			assert_int_equal(before_marker, c.max_size);
		assert_int_equal(sink->bytes_written(), total);

		Sink::Level level;
		std::string message;
		assert_true(sink->take_report(level, message));
		assert_true(level == Sink::Level::warning);
		assert_string_equal(message.c_str(), ("log reached rawlog_ext_max_size=" +
				    std::to_string(c.max_size) + " bytes: truncated, "
				    "logging stopped for this session").c_str());
		assert_false(sink->take_report(level, message));

		assert_false(sink->logs(Direction::in));
		assert_false(sink->logs(Direction::out));
		put(*sink, Direction::in, "more\n");
		put(*sink, Direction::out, "more\n");
		assert_int_equal(sink->bytes_written(), total);
		assert_int_equal(read_file(dir + "/" + base + ".in").size() +
				 read_file(dir + "/" + base + ".out").size(), total);
	}
}

void test_sink_max_size_exact_fit_then_marker_on_next_write(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	Settings set = plain_settings(tmp.path());
	set.max_size = 10;
	std::unique_ptr<Sink> sink = open_ok(set);
	put(*sink, Direction::in, "0123456789");
	Sink::Level level;
	std::string message;
	assert_false(sink->take_report(level, message));
	assert_true(sink->logs(Direction::out));

	put(*sink, Direction::out, "x");
	assert_string_equal(read_file(tmp.path(base + ".in")).c_str(),
			    ("0123456789\n" + marker(10)).c_str());
	assert_string_equal(read_file(tmp.path(base + ".out")).c_str(),
			    ("\n" + marker(10)).c_str());
	assert_true(sink->take_report(level, message));
	assert_true(level == Sink::Level::warning);
}

void test_sink_max_size_never_cuts_a_timestamp(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	Settings set = plain_settings(tmp.path());
	set.timestamps = Timestamps::lines;
	set.log_out = false;
	// "a\n" takes 20 bytes; "b" would need another stamp, which does not
	// fit in the 10 bytes left.
	set.max_size = 30;
	std::unique_ptr<Sink> sink = open_ok(set);
	put(*sink, Direction::in, "a\nb");
	assert_string_equal(read_file(tmp.path(base + ".in")).c_str(),
			    (s1 + "a\n\n" + marker(30)).c_str());
	assert_names(tmp.path(), { base + ".in" });
}

void test_sink_max_size_transcript_marker_has_no_leading_lf(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	Settings set = plain_settings(tmp.path());
	set.format = Format::transcript;
	set.max_size = 20;
	std::unique_ptr<Sink> sink = open_ok(set);
	// 15 bytes, then 5 left: "O+ " + one byte + the added "\n".
	put(*sink, Direction::in, "hello world\n");
	put(*sink, Direction::out, "0123456789");
	put(*sink, Direction::in, "later\n");
	assert_string_equal(read_file(tmp.path(base + ".log")).c_str(),
			    ("I: hello world\nO+ 0\n" + marker(20)).c_str());
	Sink::Level level;
	std::string message;
	assert_true(sink->take_report(level, message));
	assert_true(level == Sink::Level::warning);
	assert_false(sink->take_report(level, message));
}

// A 16 KiB tmpfs to run out of space on (needs root; skipped otherwise).
struct FullFs {
	TmpDir tmp;
	std::string dir = tmp.path("tmpfs");
	bool mounted = false;
};

int fullfs_setup(void **state)
{
	FullFs *fs = new FullFs();
	make_dir(fs->dir);
	fs->mounted = mount("tmpfs", fs->dir.c_str(), "tmpfs", 0,
			    "size=16k,mode=0700") == 0;
	*state = fs;
	return 0;
}

int fullfs_teardown(void **state)
{
	FullFs *fs = static_cast<FullFs *>(*state);
	// MNT_DETACH: a failed test may still hold the sink's fds open.
	if (fs->mounted)
		(void)umount2(fs->dir.c_str(), MNT_DETACH);
	delete fs;
	return 0;
}

void test_sink_write_error_reports_once_and_stops(void **state)
{
	FullFs *fs = static_cast<FullFs *>(*state);
	if (!fs->mounted)
		skip();
	std::unique_ptr<Sink> sink = open_ok(plain_settings(fs->dir));
	const std::string chunk(4096, 'x');
	Sink::Level level;
	std::string message;
	unsigned int reports = 0;
	for (unsigned int i = 0; i < 16; i++) {
		put(*sink, Direction::in, chunk);
		if (sink->take_report(level, message))
			reports++;
	}
	assert_int_equal(reports, 1);
	assert_true(level == Sink::Level::error);
	assert_string_equal(message.c_str(), ("write(" + fs->dir + "/" + base +
			    ".in) failed: " + strerror(ENOSPC) +
			    ": logging stopped for this session").c_str());
	assert_false(sink->logs(Direction::in));
	assert_false(sink->logs(Direction::out));

	uint64_t written = sink->bytes_written();
	assert_true(written > 0 && written < 16 * chunk.size());
	assert_int_equal(read_file(fs->dir + "/" + base + ".in").size(), written);
	put(*sink, Direction::out, "after\n");
	assert_int_equal(sink->bytes_written(), written);
	assert_string_equal(read_file(fs->dir + "/" + base + ".out").c_str(), "");
	assert_false(sink->take_report(level, message));
}

} // namespace

// What doveadm rawlog status asks: Sink::check() says what open() would
// do, and creates nothing.
void test_sink_check_creates_nothing(void **state)
{
	const std::string base = tmpdir(state).path();
	Settings set;
	std::string message;
	assert_int_equal(Sink::check(set, message), OpenResult::not_enabled);
	set.dir = base + "/a/b";
	assert_int_equal(Sink::check(set, message), OpenResult::not_enabled);
	assert_contains(message, "does not exist (rawlog_ext_autocreate=no)");
	set.autocreate = true;
	assert_int_equal(Sink::check(set, message), OpenResult::opened);
	assert_contains(message, "created by the first session");
	struct stat st;
	assert_int_equal(stat((base + "/a").c_str(), &st), -1);
	set.dir = base;
	assert_int_equal(Sink::check(set, message), OpenResult::opened);
	assert_string_equal(message.c_str(), ("would log into " + base).c_str());
	assert_names(base, {});
	assert_int_equal(symlink(base.c_str(), (base + "/link").c_str()), 0);
	set.dir = base + "/link";
	assert_int_equal(Sink::check(set, message), OpenResult::failed);
	assert_contains(message, "a symlink is never followed");
	set.dir = base + "/../x";
	assert_int_equal(Sink::check(set, message), OpenResult::failed);
	assert_int_equal(chmod(base.c_str(), 0777), 0);
	set.dir = base;
	assert_int_equal(Sink::check(set, message), OpenResult::failed);
	assert_contains(message, "writable by everyone");
	assert_int_equal(unlink((base + "/link").c_str()), 0);
	assert_int_equal(chmod(base.c_str(), 0700), 0);
}

int main(void)
{
	// The file and directory modes checked below assume this umask.
	umask(022);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sink_creates_files_for_format_and_direction, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_files_are_locked_while_open, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test(test_sink_without_dir_is_not_enabled),
		cmocka_unit_test_setup_teardown(test_sink_missing_dir_without_autocreate_is_not_enabled, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_autocreate_makes_nested_dirs_0700, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_autocreate_below_symlinked_existing_dir, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_trailing_slash_gives_clean_paths, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_refuses_dir_of_another_user_or_world_writable, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_refuses_symlink_as_dir, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_skips_entry_planted_at_log_name, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_uses_suffix_2_when_0_and_1_are_taken, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_fails_after_100_name_collisions, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_rejects_dir_with_dot_components, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_dir_below_regular_file_fails_with_enotdir, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_open_in_base_fd, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_input_waits_for_output, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_held_output_waits_for_release, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_write_is_byte_exact, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_large_chunks_match_the_formatter, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_split_keeps_line_state_per_direction, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_max_size_split_caps_total_and_marks_every_file, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_max_size_exact_fit_then_marker_on_next_write, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_max_size_never_cuts_a_timestamp, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_max_size_transcript_marker_has_no_leading_lf, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sink_write_error_reports_once_and_stops, fullfs_setup, fullfs_teardown),
		cmocka_unit_test_setup_teardown(test_sink_check_creates_nothing, tmpdir_setup, tmpdir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
