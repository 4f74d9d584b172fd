// Helpers of the age writer's tests (test-age, test-age-interop).
#ifndef RAWLOG_EXT_TEST_AGE_COMMON_HH
#define RAWLOG_EXT_TEST_AGE_COMMON_HH

// <fstream> before cmocka: its fail() macro would hit basic_ios::fail.
#include <fstream>

#include "test-common.hh"

#include "core/age.hh"

#include <string>
#include <vector>

namespace {

void spit(const std::string &path, const std::string &data)
{
	std::ofstream out(path, std::ios::binary);
	out << data;
}

// plain sealed to rs, handed to the writer in pieces of piece bytes.
std::string seal(const std::vector<rawlog_ext::AgeRecipient> &rs,
		 const std::string &plain, size_t piece,
		 unsigned long long *chunks = nullptr)
{
	rawlog_ext::AgeWriter w;
	std::string out, err;
	assert_true(w.begin(rs, out, err));
	for (size_t i = 0; i < plain.size(); i += piece) {
		size_t n = std::min(piece, plain.size() - i);
		assert_true(w.write((const unsigned char *)plain.data() + i, n,
				    out, err));
	}
	assert_true(w.finish(out, err));
	if (chunks != nullptr)
		*chunks = w.sealed_chunks();
	return out;
}

// n bytes of every value, not repeating at chunk boundaries.
std::string pattern(size_t n)
{
	std::string s(n, '\0');
	for (size_t i = 0; i < n; i++)
		s[i] = (char)((i * 131 + i / 977) & 0xff);
	return s;
}

} // namespace

#endif
