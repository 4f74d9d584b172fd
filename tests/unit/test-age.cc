// age v1 writer: recipient parsing and header/STREAM framing, under
// valgrind (interop with age itself is test-age-interop).
// <fstream> before cmocka: its fail() macro would hit basic_ios::fail.
#include <fstream>
#include <sstream>

#include "test-age-common.hh"

#include "core/age.hh"

using namespace rawlog_ext;

namespace {

// Two recipients age-keygen made (their secret keys were not kept).
const std::string r1 = "age1l59k8j5n50j8pxcne5l6l643lwyzwh96vuw3dnv56wh8cf0mcgms9ky0u7";
const std::string r2 = "age1xa9yhdh8s5st5jqt2v29rlcvq242wz6zaxqt4dt0yghalsa0696sfr7th5";

void test_parse_recipients(void **state)
{
	TmpDir &dir = *(TmpDir *)*state;
	std::vector<AgeRecipient> rs;
	std::string err;
	assert_true(age_parse_recipients(r1 + "  " + r2, rs, err));
	assert_int_equal(rs.size(), 2);
	// Upper case is valid bech32; mixed case is not.
	std::string up = r1;
	for (char &c : up)
		c = (char)toupper((unsigned char)c);
	assert_true(age_parse_recipients(up, rs, err));
	std::string mixed = r1;
	mixed[5] = (char)toupper((unsigned char)mixed[5]);
	if (mixed != r1)
		assert_false(age_parse_recipients(mixed, rs, err));
	// One changed character breaks the checksum.
	std::string bad = r1;
	bad[10] = bad[10] == 'q' ? 'p' : 'q';
	assert_false(age_parse_recipients(bad, rs, err));
	assert_non_null(strstr(err.c_str(), "recipient 1 is not a valid age1... recipient"));
	assert_false(age_parse_recipients("age1", rs, err));
	assert_false(age_parse_recipients("", rs, err));
	assert_false(age_parse_recipients("ssh-ed25519 AAAA", rs, err));
	// Recipients files as age -R reads them.
	spit(dir.path("rcpt"), "# admins\n\n" + r1 + "\n# second\n" + r2 + "\n");
	assert_true(age_parse_recipients("file:" + dir.path("rcpt"), rs, err));
	assert_int_equal(rs.size(), 2);
	spit(dir.path("empty"), "# nobody\n\n");
	assert_false(age_parse_recipients("file:" + dir.path("empty"), rs, err));
	assert_false(age_parse_recipients("file:" + dir.path("missing"), rs, err));
	spit(dir.path("badfile"), r1 + "\nage1xyz\n");
	assert_false(age_parse_recipients("file:" + dir.path("badfile"), rs, err));
	// As Debian's age -R (1.1.1): one recipient per line and nothing
	// around it ("line 1 of FILE is not a valid ..."); CRLF is fine.
	for (const std::string &text : { r1 + " " + r2 + "\n", " " + r1 + "\n",
					 r1 + " \n", r1 + "\t\n",
					 "\t\n" + r1 + "\n",
					 " # indented\n" + r1 + "\n" }) {
		spit(dir.path("line"), text);
		assert_false(age_parse_recipients("file:" + dir.path("line"),
						  rs, err));
		assert_non_null(strstr(err.c_str(), "line 1"));
	}
	spit(dir.path("crlf"), "# x\r\n" + r1 + "\r\n" + r2 + "\r\n");
	assert_true(age_parse_recipients("file:" + dir.path("crlf"), rs, err));
	assert_int_equal(rs.size(), 2);
}

void test_begin_twice(void **)
{
	std::vector<AgeRecipient> rs;
	std::string err;
	assert_true(age_parse_recipients(r1, rs, err));
	AgeWriter w;
	std::string out;
	assert_true(w.begin(rs, out, err));
	const std::string header = out;
	// Refused, nothing written, and the open file goes on.
	assert_false(w.begin(rs, out, err));
	assert_non_null(strstr(err.c_str(), "already"));
	assert_true(out == header);
	const std::string plain = pattern(age_chunk_size + 10);
	assert_true(w.write((const unsigned char *)plain.data(), plain.size(),
			    out, err));
	assert_true(w.finish(out, err));
	assert_int_equal(out.size(), header.size() + plain.size() + 2 * 16);
	// A writer whose begin() failed for want of recipients is closed.
	AgeWriter none;
	std::string o2;
	assert_false(none.begin({}, o2, err));
	assert_false(none.write((const unsigned char *)"x", 1, o2, err));
	assert_true(o2.empty());
}

void test_framing(void **)
{
	std::vector<AgeRecipient> rs;
	std::string err;
	assert_true(age_parse_recipients(r1 + " " + r2, rs, err));
	const size_t sizes[] = { 0, 1, age_chunk_size - 1, age_chunk_size,
				 age_chunk_size + 1, 3 * age_chunk_size };
	for (size_t size : sizes) {
		unsigned long long chunks = 0;
		std::string f = seal(rs, pattern(size), 4000, &chunks);
		std::istringstream in(f);
		std::string line;
		std::getline(in, line);
		assert_string_equal(line.c_str(), "age-encryption.org/v1");
		for (int i = 0; i < 2; i++) {
			std::getline(in, line);
			assert_true(line.compare(0, 10, "-> X25519 ") == 0);
			assert_int_equal(line.size(), 10 + 43);
			std::getline(in, line);
			assert_int_equal(line.size(), 43);
		}
		std::getline(in, line);
		assert_true(line.compare(0, 4, "--- ") == 0);
		assert_int_equal(line.size(), 4 + 43);
		size_t header = (size_t)in.tellg();
		// Full chunks, the last one possibly full; empty input is one
		// empty last chunk.
		unsigned long long want = size == 0 ? 1 :
			(size + age_chunk_size - 1) / age_chunk_size;
		assert_int_equal(chunks, want);
		assert_int_equal(f.size(), header + 16 + size + 16 * want);
	}
}

}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_parse_recipients, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_begin_twice),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
