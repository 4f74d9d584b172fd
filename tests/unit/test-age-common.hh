// Helpers of the age writer's tests (test-age, test-age-interop).
#ifndef RAWLOG_EXT_TEST_AGE_COMMON_HH
#define RAWLOG_EXT_TEST_AGE_COMMON_HH

// <fstream> before cmocka: its fail() macro would hit basic_ios::fail.
#include <fstream>

#include "test-common.hh"

#include "core/age.hh"

#include <cstdio>
#include <string>
#include <vector>

namespace {

inline void spit(const std::string &path, const std::string &data)
{
	std::ofstream out(path, std::ios::binary);
	out << data;
}

// plain sealed to rs, handed to the writer in pieces of piece bytes.
inline std::string seal(const std::vector<rawlog_ext::AgeRecipient> &rs,
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

inline std::string run(const std::string &cmd, int *status = nullptr)
{
	FILE *p = popen(cmd.c_str(), "r");
	if (p == nullptr)
		fail_msg("popen %s", cmd.c_str());
	std::string out;
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		out.append(buf, n);
	int st = pclose(p);
	if (status != nullptr)
		*status = st;
	return out;
}

// A key made by age-keygen; returns its recipient.
inline std::string keygen(const std::string &key_path)
{
	int st = 0;
	run("age-keygen -o " + key_path + " 2>/dev/null", &st);
	assert_int_equal(st, 0);
	std::string r = run("age-keygen -y " + key_path, &st);
	assert_int_equal(st, 0);
	while (!r.empty() && r.back() == '\n')
		r.pop_back();
	assert_true(r.compare(0, 4, "age1") == 0);
	return r;
}

// n bytes of every value, not repeating at chunk boundaries.
inline std::string pattern(size_t n)
{
	std::string s(n, '\0');
	for (size_t i = 0; i < n; i++)
		s[i] = (char)((i * 131 + i / 977) & 0xff);
	return s;
}

} // namespace

#endif
