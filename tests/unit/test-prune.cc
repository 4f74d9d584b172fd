// doveadm rawlog prune's walk, choice and removal (core/prune.hh) on real
// trees: oldest first, whole logs, running (locked) logs kept, symlinks
// never followed, other names never touched.
#include "test-common.hh"

#include "core/prune.hh"

#include <sys/file.h>
#include <sys/time.h>

using namespace rawlog_ext;

namespace {

const time_t now = 1764689556;	// 2025-12-02T15:32:36Z
const time_t day = 86400;

// A log file named as the module names them, size bytes, its name's time
// and mtime `age` seconds before now.
std::string make_log(const std::string &dir, const char *session, time_t age,
		     const char *ext, size_t size, const char *service = "imap")
{
	NameParts p = fixed_parts();
	p.time = now - age;
	p.session = session;
	p.service = service;
	std::string path = dir + "/" + log_base_name(p) + ext;
	int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		      0600);
	if (fd == -1)
		fail_msg("creating %s failed: %s", path.c_str(), strerror(errno));
	std::string data(size, 'x');
	assert_int_equal(write(fd, data.data(), data.size()), (ssize_t)size);
	close(fd);
	struct timeval tv[2] = { { now - age, 0 }, { now - age, 0 } };
	assert_int_equal(utimes(path.c_str(), tv), 0);
	return path;
}

bool exists(const std::string &path)
{
	struct stat st;
	return lstat(path.c_str(), &st) == 0;
}

struct Run {
	std::vector<PruneLog> logs;
	uint64_t left = 0;
	std::vector<std::string> warnings;
};

Run scan_select(const std::vector<std::string> &roots, const PruneRule &rule)
{
	Run r;
	std::vector<PruneFile> files;
	for (size_t i = 0; i < roots.size(); i++) {
		bool missing;
		std::string error;
		if (!prune_scan(roots[i], i, files, r.warnings, missing, error))
			fail_msg("scan %s: %s", roots[i].c_str(), error.c_str());
	}
	r.logs = prune_group(std::move(files));
	r.left = prune_select(r.logs, rule);
	return r;
}

void remove_chosen(const std::vector<std::string> &roots, const Run &r)
{
	for (const PruneLog &log : r.logs) {
		if (!log.remove)
			continue;
		std::string kept, error;
		PruneRemoved res = prune_remove(roots, log, kept, error);
		if (res != PruneRemoved::removed)
			fail_msg("%s: %s%s", log.files[0].path.c_str(),
				 kept.c_str(), error.c_str());
	}
}

PruneRule rule_max(uint64_t max)
{
	PruneRule r;
	r.has_max_total = true;
	r.max_total = max;
	r.now = now;
	return r;
}

PruneRule rule_age(time_t age)
{
	PruneRule r;
	r.older_than = age;
	r.now = now;
	return r;
}

void test_template_root(void **)
{
	assert_string_equal(prune_template_root("/var/log/rawlog").c_str(),
			    "/var/log/rawlog");
	assert_string_equal(prune_template_root("/var/log/rawlog/").c_str(),
			    "/var/log/rawlog");
	assert_string_equal(prune_template_root("/var/log/rawlog/%u").c_str(),
			    "/var/log/rawlog");
	assert_string_equal(prune_template_root("/var//rawlog/%{user}/x").c_str(),
			    "/var/rawlog");
	assert_string_equal(prune_template_root("/srv/x%d/%u").c_str(), "/srv");
	assert_string_equal(prune_template_root("%h/rawlog").c_str(), "");
	assert_string_equal(prune_template_root("/%u/rawlog").c_str(), "");
	assert_string_equal(prune_template_root("/").c_str(), "");
	assert_string_equal(prune_template_root("rawlog").c_str(), "");
	assert_string_equal(prune_template_root("").c_str(), "");
}

void test_max_total_oldest_first_whole_logs(void **state)
{
	const std::string top = tmpdir(state).path();
	std::string a_in = make_log(top, "A", 3 * day, ".in", 100);
	std::string a_out = make_log(top, "A", 3 * day, ".out", 100);
	std::string b = make_log(top, "B", 2 * day, ".log", 150);
	std::string c_in = make_log(top, "C", 1 * day, ".in", 50);
	std::string c_out = make_log(top, "C", 1 * day, ".out.age", 50);
	std::string other = top + "/notes.txt";
	FILE *f = fopen(other.c_str(), "w");
	fputs(std::string(1000, 'n').c_str(), f);
	fclose(f);

	Run r = scan_select({ top }, rule_max(260));
	assert_int_equal(r.logs.size(), 3);
	// Oldest first, a split log's files together.
	assert_int_equal(r.logs[0].files.size(), 2);
	assert_int_equal(r.logs[0].bytes, 200);
	assert_true(r.logs[0].remove);
	assert_false(r.logs[1].remove);
	assert_false(r.logs[2].remove);
	assert_int_equal(r.left, 250);
	remove_chosen({ top }, r);
	assert_false(exists(a_in));
	assert_false(exists(a_out));
	assert_true(exists(b) && exists(c_in) && exists(c_out));
	// Only log names are counted or touched.
	assert_true(exists(other));

	r = scan_select({ top }, rule_max(0));
	assert_int_equal(r.left, 0);
	remove_chosen({ top }, r);
	assert_false(exists(b) || exists(c_in) || exists(c_out));
	assert_true(exists(other));
}

void test_older_than(void **state)
{
	const std::string top = tmpdir(state).path();
	std::string old = make_log(top, "A", 40 * day, ".log", 10);
	std::string recent = make_log(top, "B", 10 * day, ".log", 10);
	// An old name, written to lately (a long session): not old.
	std::string long_one = make_log(top, "C", 45 * day, ".log", 10);
	struct timeval tv[2] = { { now - 3600, 0 }, { now - 3600, 0 } };
	assert_int_equal(utimes(long_one.c_str(), tv), 0);

	Run r = scan_select({ top }, rule_age(30 * day));
	remove_chosen({ top }, r);
	assert_false(exists(old));
	assert_true(exists(recent));
	assert_true(exists(long_one));
}

void test_running_log_kept_and_counted(void **state)
{
	const std::string top = tmpdir(state).path();
	std::string run_in = make_log(top, "R", 5 * day, ".in", 500);
	std::string run_out = make_log(top, "R", 5 * day, ".out", 500);
	std::string done = make_log(top, "D", 1 * day, ".log", 100);
	// The module holds LOCK_EX on the .in only here: the whole log stays.
	int fd = open(run_in.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd != -1);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);

	Run r = scan_select({ top }, rule_max(10));
	assert_int_equal(r.logs.size(), 2);
	assert_string_equal(r.logs[0].kept.c_str(), "running");
	assert_false(r.logs[0].remove);
	assert_true(r.logs[1].remove);
	// The running log counts: still over.
	assert_int_equal(r.left, 1000);
	remove_chosen({ top }, r);
	assert_true(exists(run_in) && exists(run_out));
	assert_false(exists(done));

	// A lock taken between the walk and the removal: nothing goes.
	close(fd);
	r = scan_select({ top }, rule_max(0));
	assert_true(r.logs[0].remove);
	fd = open(run_out.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	std::string kept, error;
	assert_int_equal((int)prune_remove({ top }, r.logs[0], kept, error),
			 (int)PruneRemoved::kept);
	assert_string_equal(kept.c_str(), "running");
	assert_true(exists(run_in) && exists(run_out));
	close(fd);
	assert_int_equal((int)prune_remove({ top }, r.logs[0], kept, error),
			 (int)PruneRemoved::removed);
	assert_false(exists(run_in) || exists(run_out));
}

void test_symlinks_never_followed(void **state)
{
	const std::string base = tmpdir(state).path();
	const std::string top = base + "/tree", outside = base + "/outside";
	assert_int_equal(mkdir(top.c_str(), 0700), 0);
	assert_int_equal(mkdir(outside.c_str(), 0700), 0);
	assert_int_equal(mkdir((top + "/alice").c_str(), 0700), 0);
	std::string in_user = make_log(top + "/alice", "U", 9 * day, ".log", 10);
	std::string victim = make_log(outside, "V", 9 * day, ".log", 10);
	// A directory symlink and a file symlink with a log's name.
	assert_int_equal(symlink(outside.c_str(), (top + "/bob").c_str()), 0);
	NameParts p = fixed_parts();
	p.time = now - 9 * day;
	p.session = "L";
	const std::string link = top + "/" + log_base_name(p) + ".log";
	assert_int_equal(symlink(victim.c_str(), link.c_str()), 0);

	Run r = scan_select({ top }, rule_age(day));
	assert_int_equal(r.logs.size(), 1);
	remove_chosen({ top }, r);
	assert_false(exists(in_user));
	assert_true(exists(victim));
	assert_true(exists(link));

	// A tree that is itself a symlink is refused.
	std::vector<PruneFile> files;
	std::vector<std::string> warnings;
	bool missing;
	std::string error;
	assert_false(prune_scan(top + "/bob", 0, files, warnings, missing,
				error));
	assert_false(missing);
	assert_true(error.find("symlink") != std::string::npos);
	assert_false(prune_scan(base + "/none", 0, files, warnings, missing,
				error));
	assert_true(missing);
}

void test_directory_swapped_for_symlink(void **state)
{
	// The walk saw a real directory; by the removal it is a symlink.
	const std::string base = tmpdir(state).path();
	const std::string top = base + "/tree", outside = base + "/outside";
	assert_int_equal(mkdir(top.c_str(), 0700), 0);
	assert_int_equal(mkdir(outside.c_str(), 0700), 0);
	assert_int_equal(mkdir((top + "/alice").c_str(), 0700), 0);
	make_log(top + "/alice", "U", 9 * day, ".log", 10);
	Run r = scan_select({ top }, rule_age(day));
	assert_true(r.logs[0].remove);
	assert_int_equal(rename((top + "/alice").c_str(),
				(outside + "/alice").c_str()), 0);
	assert_int_equal(symlink((outside + "/alice").c_str(),
				 (top + "/alice").c_str()), 0);
	std::string kept, error;
	assert_int_equal((int)prune_remove({ top }, r.logs[0], kept, error),
			 (int)PruneRemoved::kept);
	assert_int_equal(list_dir(outside + "/alice").size(), 1);
}

void test_nested_trees_count_once(void **state)
{
	const std::string top = tmpdir(state).path();
	assert_int_equal(mkdir((top + "/lmtp").c_str(), 0700), 0);
	make_log(top + "/lmtp", "M", day, ".log", 100, "lmtp");
	make_log(top, "I", day, ".log", 100);
	Run r = scan_select({ top, top + "/lmtp" }, rule_max(1000));
	assert_int_equal(r.logs.size(), 2);
	assert_int_equal(r.left, 200);
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_template_root),
		cmocka_unit_test_setup_teardown(test_max_total_oldest_first_whole_logs,
						tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_older_than,
						tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_running_log_kept_and_counted,
						tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_symlinks_never_followed,
						tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_directory_swapped_for_symlink,
						tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_nested_trees_count_once,
						tmpdir_setup, tmpdir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
