// Sink with rawlog_ext_seal_recipients: the files are age v1, through the
// seal module of this build, and decrypt with Debian's age to exactly the
// bytes an unsealed log holds. Not under valgrind (it would trace the Go
// binaries; run-test-valgrind.exclude); the ASan build covers it.
// <fstream> before cmocka: its fail() macro would hit basic_ios::fail.
#include <fstream>

#include "test-age-common.hh"

#include "core/seal.hh"
#include "core/sink.hh"

#include <sys/mount.h>
#include <sys/wait.h>

using namespace rawlog_ext;

namespace {

const struct timeval t1 = { 1700000000, 5 };
const std::string base = log_base_name(fixed_parts());

struct Keys {
	std::string k1, k2;
	std::vector<AgeRecipient> recipients;
};

Keys make_keys(TmpDir &dir)
{
	Keys keys;
	keys.k1 = dir.path("k1.txt");
	keys.k2 = dir.path("k2.txt");
	std::string r1 = keygen(keys.k1), r2 = keygen(keys.k2);
	std::string error;
	assert_true(age_parse_recipients(r1 + "," + r2, keys.recipients,
					 error));
	return keys;
}

Settings sealed_settings(const std::string &dir, const Keys &keys)
{
	Settings set;
	set.dir = dir;
	set.timestamps = Timestamps::none;
	set.seal_recipients = keys.recipients;
	return set;
}

std::unique_ptr<Sink> open_ok(const Settings &set, std::string &message)
{
	std::unique_ptr<Sink> sink;
	if (Sink::open(set, fixed_parts(), sink, message) !=
	    OpenResult::opened || sink == nullptr)
		fail_msg("Sink::open failed: %s", message.c_str());
	return sink;
}

// age -d's output, and its exit status in *status.
std::string decrypt(const std::string &key, const std::string &path,
		    int *status)
{
	return run("age -d -i " + key + " " + path + " 2>/dev/null", status);
}

std::string decrypt_ok(const std::string &key, const std::string &path)
{
	int status = -1;
	std::string plain = decrypt(key, path, &status);
	if (status != 0)
		fail_msg("age -d %s failed (%d)", path.c_str(), status);
	return plain;
}

void put(Sink &sink, Direction direction, const std::string &data)
{
	sink.write(direction, data.data(), data.size(), t1);
}

void test_sealed_split_decrypts_with_either_key(void **state)
{
	TmpDir &dir = tmpdir(state);
	Keys keys = make_keys(dir);
	std::string logs = dir.path("logs");
	assert_int_equal(mkdir(logs.c_str(), 0700), 0);
	std::string message;
	std::string in = "a LOGIN x y\r\nb SELECT INBOX\r\n";
	std::string out = "* OK ready\r\na OK\r\n" + pattern(3 * age_chunk_size + 5);
	{
		std::unique_ptr<Sink> sink =
			open_ok(sealed_settings(logs, keys), message);
		assert_true(message.find("logging sealed to ") == 0);
		put(*sink, Direction::out, out.substr(0, 18));
		put(*sink, Direction::in, in.substr(0, 13));
		// Pieces across chunk boundaries.
		for (size_t i = 18; i < out.size(); i += 10000)
			put(*sink, Direction::out, out.substr(i, 10000));
		put(*sink, Direction::in, in.substr(13));
	}
	std::vector<std::string> names = list_dir(logs);
	assert_int_equal(names.size(), 2);
	assert_string_equal(names[0].c_str(), (base + ".in.age").c_str());
	assert_string_equal(names[1].c_str(), (base + ".out.age").c_str());
	struct stat st;
	assert_int_equal(stat((logs + "/" + names[0]).c_str(), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	for (const std::string &key : { keys.k1, keys.k2 }) {
		assert_bytes_equal(decrypt_ok(key, logs + "/" + names[0]), in);
		assert_bytes_equal(decrypt_ok(key, logs + "/" + names[1]), out);
	}
	// Not a byte of it in clear.
	std::string raw = read_file(logs + "/" + names[0]);
	assert_true(raw.compare(0, 22, "age-encryption.org/v1\n") == 0);
	assert_true(raw.find("LOGIN") == std::string::npos);
}

void test_sealed_transcript_is_the_unsealed_bytes(void **state)
{
	TmpDir &dir = tmpdir(state);
	Keys keys = make_keys(dir);
	std::string sealed_dir = dir.path("sealed"), plain_dir = dir.path("plain");
	assert_int_equal(mkdir(sealed_dir.c_str(), 0700), 0);
	assert_int_equal(mkdir(plain_dir.c_str(), 0700), 0);
	Settings sealed = sealed_settings(sealed_dir, keys);
	sealed.format = Format::transcript;
	sealed.timestamps = Timestamps::lines;
	Settings plain = sealed;
	plain.dir = plain_dir;
	plain.seal_recipients.clear();
	std::string message;
	{
		std::unique_ptr<Sink> a = open_ok(sealed, message);
		std::unique_ptr<Sink> b = open_ok(plain, message);
		for (Sink *sink : { a.get(), b.get() }) {
			put(*sink, Direction::out, "+OK hi\r\n");
			put(*sink, Direction::in, "USER x\r\nPASS");
			put(*sink, Direction::in, " y\r\n");
			put(*sink, Direction::out, "+OK\r\n" + pattern(70000));
		}
	}
	assert_bytes_equal(decrypt_ok(keys.k1, sealed_dir + "/" + base + ".log.age"),
			   read_file(plain_dir + "/" + base + ".log"));
}

// The open tail lives in memory only: until the session ends the file
// holds its full chunks, and age reads it as truncated (kill -9).
void test_sealed_open_tail_is_not_on_disk(void **state)
{
	TmpDir &dir = tmpdir(state);
	Keys keys = make_keys(dir);
	std::string logs = dir.path("logs");
	assert_int_equal(mkdir(logs.c_str(), 0700), 0);
	Settings set = sealed_settings(logs, keys);
	set.log_in = false;
	std::string message;
	std::unique_ptr<Sink> sink = open_ok(set, message);
	std::string path = logs + "/" + base + ".out.age";
	std::string header = read_file(path);
	put(*sink, Direction::out, pattern(age_chunk_size + 100));
	// One chunk sealed (a full one is sealed once more data follows).
	std::string now = read_file(path);
	assert_int_equal(now.size(), header.size() + age_chunk_size + 16);
	int status = 0;
	std::string got = decrypt(keys.k1, path, &status);
	assert_int_not_equal(status, 0);
	sink.reset();
	assert_bytes_equal(decrypt_ok(keys.k1, path),
			   pattern(age_chunk_size + 100));
}

// At the cap the marker is written and the file completed at once.
void test_sealed_max_size_completes_the_file(void **state)
{
	TmpDir &dir = tmpdir(state);
	Keys keys = make_keys(dir);
	std::string logs = dir.path("logs");
	assert_int_equal(mkdir(logs.c_str(), 0700), 0);
	Settings set = sealed_settings(logs, keys);
	set.format = Format::transcript;
	set.max_size = 1000;
	std::string message;
	std::unique_ptr<Sink> sink = open_ok(set, message);
	put(*sink, Direction::out, pattern(5000));
	Sink::Level level;
	std::string report;
	assert_true(sink->take_report(level, report));
	std::string plain = decrypt_ok(keys.k1, logs + "/" + base + ".log.age");
	assert_true(plain.size() > 1000 - 200 && plain.size() <= 1000 + 200);
	assert_true(plain.find("*** rawlog_ext: log truncated: "
			       "rawlog_ext_max_size=1000") != std::string::npos);
	// Nothing more goes in, and closing leaves it complete.
	put(*sink, Direction::out, "more");
	sink.reset();
	assert_bytes_equal(decrypt_ok(keys.k1, logs + "/" + base + ".log.age"),
			   plain);
}

// No seal module: an error naming the setting, no file at all.
void test_sealed_without_module_logs_nothing(void **state)
{
	TmpDir &dir = tmpdir(state);
	Keys keys = make_keys(dir);
	std::string logs = dir.path("logs");
	assert_int_equal(mkdir(logs.c_str(), 0700), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		// The module is loaded once per process: before any test
		// loaded it (this test runs first).
		seal_module_set_path(dir.path("missing/rawlog_ext_seal.so"));
		std::unique_ptr<Sink> sink;
		std::string message;
		OpenResult result = Sink::open(sealed_settings(logs, keys),
					       fixed_parts(), sink, message);
		bool ok = result == OpenResult::failed && sink == nullptr &&
			message.find("rawlog_ext_seal_recipients: cannot load "
				     "the seal module") == 0 &&
			message.find("never in clear") != std::string::npos;
		if (!ok)
			fprintf(stderr, "result %d: %s\n", (int)result,
				message.c_str());
		_exit(ok ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(list_dir(logs).size(), 0);
	seal_module_set_path(TEST_SEAL_MODULE);
}

// A full disk when the session ends: the last chunk cannot be written,
// and that is reported, not lost with the Sink.
void test_sealed_failure_at_the_end_is_reported(void **state)
{
	TmpDir &dir = tmpdir(state);
	Keys keys = make_keys(dir);
	std::string logs = dir.path("logs");
	assert_int_equal(mkdir(logs.c_str(), 0700), 0);
	// Room for the header and one sealed chunk, not for the tail too.
	if (mount("tmpfs", logs.c_str(), "tmpfs", 0, "size=96k,mode=0700") != 0)
		skip();
	Settings set = sealed_settings(logs, keys);
	set.log_in = false;
	std::string message;
	std::unique_ptr<Sink> sink = open_ok(set, message);
	put(*sink, Direction::out, pattern(age_chunk_size + 60 * 1024));
	Sink::Level level;
	std::string report;
	assert_false(sink->take_report(level, report));
	sink->end_session();
	assert_true(sink->take_report(level, report));
	assert_true(level == Sink::Level::error);
	assert_true(report.find(base + ".out.age) failed: " +
				std::string(strerror(ENOSPC))) != std::string::npos);
	sink.reset();
	// The chunk sealed before is intact; the file reads as cut.
	int status = 0;
	std::string got = decrypt(keys.k1, logs + "/" + base + ".out.age", &status);
	assert_int_not_equal(status, 0);
	assert_bytes_equal(got, pattern(age_chunk_size));
	(void)umount2(logs.c_str(), MNT_DETACH);
}

// A write error on one file: neither file of the session is completed
// (the one that did not fail is not the whole session either), and no
// byte goes out in clear afterwards.
void test_sealed_write_error_completes_no_file(void **state)
{
	TmpDir &dir = tmpdir(state);
	Keys keys = make_keys(dir);
	std::string logs = dir.path("logs");
	assert_int_equal(mkdir(logs.c_str(), 0700), 0);
	if (mount("tmpfs", logs.c_str(), "tmpfs", 0, "size=200k,mode=0700") != 0)
		skip();
	std::string message;
	{
		std::unique_ptr<Sink> sink =
			open_ok(sealed_settings(logs, keys), message);
		put(*sink, Direction::out, "* OK\r\n");
		for (int i = 0; i < 8; i++)
			put(*sink, Direction::in, pattern(age_chunk_size));
		Sink::Level level;
		std::string report;
		assert_true(sink->take_report(level, report));
		assert_true(report.find(".in.age) failed: ") != std::string::npos);
		put(*sink, Direction::out, "after the error\r\n");
		sink->end_session();
	}
	int status = 0;
	decrypt(keys.k1, logs + "/" + base + ".out.age", &status);
	assert_int_not_equal(status, 0);
	std::string raw = read_file(logs + "/" + base + ".out.age");
	assert_true(raw.find("after the error") == std::string::npos);
	assert_true(raw.find("* OK") == std::string::npos);
	(void)umount2(logs.c_str(), MNT_DETACH);
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		// First: no test before it has loaded the module.
		cmocka_unit_test_setup_teardown(test_sealed_without_module_logs_nothing, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sealed_split_decrypts_with_either_key, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sealed_transcript_is_the_unsealed_bytes, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sealed_open_tail_is_not_on_disk, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sealed_max_size_completes_the_file, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sealed_failure_at_the_end_is_reported, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_sealed_write_error_completes_no_file, tmpdir_setup, tmpdir_teardown),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
