// age v1 interop: files our writer writes decrypt with Debian's age
// (age-keygen / age -d), and files age -r / -R write decrypt with our
// reader; age must be installed
// (scripts/setup.sh): a missing tool fails the test rather than skip it.
// Not under valgrind (run-test-valgrind.exclude): it would trace the Go
// binaries and report their stack tricks; test-age covers our code there.
// <fstream> before cmocka: its fail() macro would hit basic_ios::fail.
#include <fstream>
#include <sstream>

#include "test-age-common.hh"

#include "core/age.hh"
#include "core/age-read.hh"

using namespace rawlog_ext;

namespace {

void test_interop_age_decrypts(void **state)
{
	TmpDir &dir = *(TmpDir *)*state;
	std::string r1 = keygen(dir.path("k1")), r2 = keygen(dir.path("k2"));
	std::vector<AgeRecipient> rs;
	std::string err;
	assert_true(age_parse_recipients(r1 + " " + r2, rs, err));
	const size_t sizes[] = { 0, 1, 1000, age_chunk_size,
				 age_chunk_size + 1, 2 * age_chunk_size,
				 5 * age_chunk_size - 7 };
	for (size_t size : sizes) {
		std::string plain = pattern(size);
		spit(dir.path("f.age"), seal(rs, plain, 7777));
		for (const char *k : { "k1", "k2" }) {
			int st = 0;
			std::string got = run("age -d -i " + dir.path(k) + " " +
					      dir.path("f.age"), &st);
			assert_int_equal(st, 0);
			assert_int_equal(got.size(), plain.size());
			assert_true(got == plain);
		}
	}
	// A key that is no recipient does not open it.
	keygen(dir.path("k3"));
	int st = 0;
	run("age -d -i " + dir.path("k3") + " " + dir.path("f.age") +
	    " 2>/dev/null", &st);
	assert_int_not_equal(st, 0);
}

void test_tampering_refused(void **state)
{
	TmpDir &dir = *(TmpDir *)*state;
	std::string r1 = keygen(dir.path("k1"));
	std::vector<AgeRecipient> rs;
	std::string err;
	assert_true(age_parse_recipients(r1, rs, err));
	std::string plain = pattern(3 * age_chunk_size + 100);
	std::string f = seal(rs, plain, 65536);
	size_t header = f.find("\n--- ") + 1;
	header = f.find('\n', header) + 1 + 16;
	size_t chunk = age_chunk_size + 16;
	auto refused = [&](const std::string &data) {
		spit(dir.path("t.age"), data);
		int st = 0;
		run("age -d -i " + dir.path("k1") + " " + dir.path("t.age") +
		    " >/dev/null 2>&1", &st);
		return st != 0;
	};
	assert_false(refused(f));
	std::string t = f;
	t[30] ^= 1; // a stanza
	assert_true(refused(t));
	t = f;
	t[header - 20] ^= 1; // the payload nonce
	assert_true(refused(t));
	t = f;
	t[header + chunk + 5] ^= 1; // a middle chunk
	assert_true(refused(t));
	t = f;
	t[f.size() - 1] ^= 1; // the last chunk
	assert_true(refused(t));
	assert_true(refused(f.substr(0, header + 3 * chunk))); // last dropped
	assert_true(refused(f.substr(0, header + chunk + 100))); // inside
	t = f.substr(0, header) + f.substr(header + chunk); // a chunk removed
	assert_true(refused(t));
	t = f.substr(0, header) + f.substr(header + chunk, chunk) +
	    f.substr(header, chunk) + f.substr(header + 2 * chunk);
	assert_true(refused(t)); // reordered
}

// Files Debian's age wrote read with our reader, in pieces.
std::string read_with(const std::string &key_path, const std::string &file,
		      AgeReadError &kind)
{
	AgeIdentities ids;
	std::string err;
	assert_true(ids.add_file(key_path, err));
	std::ifstream in(file, std::ios::binary);
	std::string data((std::istreambuf_iterator<char>(in)),
			 std::istreambuf_iterator<char>());
	std::string plain;
	AgeReader r(ids, [&plain](const unsigned char *p, size_t n) {
		plain.append((const char *)p, n);
	});
	for (size_t i = 0; i < data.size(); i += 4097)
		if (!r.feed(data.data() + i, std::min<size_t>(4097,
							       data.size() - i)))
			break;
	(void)r.finish();
	kind = r.kind();
	return plain;
}

void test_interop_reader_reads_age(void **state)
{
	TmpDir &dir = *(TmpDir *)*state;
	std::string r1 = keygen(dir.path("k1")), r2 = keygen(dir.path("k2"));
	keygen(dir.path("k3"));
	spit(dir.path("rcpts"), "# two admins\n" + r1 + "\n\n" + r2 + "\n");
	const size_t sizes[] = { 0, 1, age_chunk_size, age_chunk_size + 1,
				 3 * age_chunk_size + 17 };
	for (size_t size : sizes) {
		std::string plain = pattern(size);
		spit(dir.path("plain"), plain);
		int st = 0;
		run("age -r " + r1 + " -o " + dir.path("one.age") + " " +
		    dir.path("plain"), &st);
		assert_int_equal(st, 0);
		run("age -R " + dir.path("rcpts") + " -o " + dir.path("two.age") +
		    " " + dir.path("plain"), &st);
		assert_int_equal(st, 0);
		AgeReadError kind;
		assert_true(read_with(dir.path("k1"), dir.path("one.age"), kind) ==
			    plain);
		assert_int_equal(kind, AgeReadError::none);
		for (const char *k : { "k1", "k2" }) {
			assert_true(read_with(dir.path(k), dir.path("two.age"),
					      kind) == plain);
			assert_int_equal(kind, AgeReadError::none);
		}
		assert_true(read_with(dir.path("k3"), dir.path("two.age"),
				      kind).empty());
		assert_int_equal(kind, AgeReadError::no_identity);
	}
	// age -R refuses several recipients on a line, as our parser does.
	spit(dir.path("oneline"), r1 + " " + r2 + "\n");
	int st = 0;
	run("age -R " + dir.path("oneline") + " -o " + dir.path("x.age") + " " +
	    dir.path("plain") + " 2>/dev/null", &st);
	assert_int_not_equal(st, 0);
	std::vector<AgeRecipient> rs;
	std::string err;
	assert_false(age_parse_recipients("file:" + dir.path("oneline"), rs, err));
}

}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_interop_age_decrypts, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_tampering_refused, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_interop_reader_reads_age, tmpdir_setup, tmpdir_teardown),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
