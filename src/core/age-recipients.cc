// age recipients ("age1...", bech32): plain parsing, no OpenSSL, so
// settings can be validated in processes that never load libcrypto.
#include "age.hh"
#include "age-internal.hh"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace rawlog_ext {

namespace age_detail {

// BIP 173 bech32 (not bech32m), as age's keys are encoded.
static const char bech32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static unsigned bech32_polymod(const std::vector<unsigned char> &v)
{
	static const unsigned gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa,
					 0x3d4233dd, 0x2a1462b3 };
	unsigned chk = 1;
	for (unsigned char c : v) {
		unsigned top = chk >> 25;
		chk = ((chk & 0x1ffffff) << 5) ^ c;
		for (int i = 0; i < 5; i++)
			if ((top >> i) & 1)
				chk ^= gen[i];
	}
	return chk;
}

bool bech32_decode(const std::string &in, std::string &hrp,
		   std::vector<unsigned char> &bytes)
{
	bool lower = false, upper = false;
	for (char c : in) {
		if (c < 33 || c > 126)
			return false;
		if (std::islower((unsigned char)c))
			lower = true;
		if (std::isupper((unsigned char)c))
			upper = true;
	}
	if (lower && upper)
		return false;
	std::string s;
	for (char c : in)
		s += (char)std::tolower((unsigned char)c);
	size_t sep = s.rfind('1');
	if (sep == std::string::npos || sep == 0 || s.size() - sep - 1 < 6)
		return false;
	std::vector<unsigned char> check;
	for (char c : s.substr(0, sep))
		check.push_back((unsigned char)c >> 5);
	check.push_back(0);
	for (char c : s.substr(0, sep))
		check.push_back((unsigned char)c & 31);
	std::vector<unsigned char> data;
	for (size_t i = sep + 1; i < s.size(); i++) {
		const char *p = std::strchr(bech32_charset, s[i]);
		if (p == nullptr || *p == '\0')
			return false;
		data.push_back((unsigned char)(p - bech32_charset));
	}
	check.insert(check.end(), data.begin(), data.end());
	bool ok = bech32_polymod(check) == 1;
	data.resize(data.size() - 6);
	// 5-bit groups to bytes; leftover bits must be zero padding.
	bytes.clear();
	unsigned acc = 0;
	int bits = 0;
	for (unsigned char d : data) {
		acc = (acc << 5) | d;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			bytes.push_back((unsigned char)(acc >> bits));
		}
	}
	ok = ok && bits < 5 && (acc & ((1u << bits) - 1)) == 0;
	// The data may be a secret key (the reader's identities): no copy is
	// left behind (explicit_bzero: libc, the core has no OpenSSL).
	explicit_bzero(&acc, sizeof(acc));
	explicit_bzero(&s[0], s.size());
	explicit_bzero(data.data(), data.size());
	explicit_bzero(check.data(), check.size());
	if (!ok) {
		explicit_bzero(bytes.data(), bytes.size());
		bytes.clear();
		return false;
	}
	hrp = in.substr(0, sep);
	return true;
}

} // namespace age_detail

namespace {

bool parse_age1(const std::string &in, AgeRecipient &out)
{
	std::string hrp;
	std::vector<unsigned char> bytes;
	if (!age_detail::bech32_decode(in, hrp, bytes))
		return false;
	for (char &c : hrp)
		c = (char)std::tolower((unsigned char)c);
	if (hrp != "age" || bytes.size() != 32)
		return false;
	std::memcpy(out.data(), bytes.data(), 32);
	return true;
}

// Never echoes what it refuses: an admin may have pasted a secret key.
std::string malformed(const std::string &word, const std::string &where)
{
	std::string upper = word;
	for (char &c : upper)
		c = (char)std::toupper((unsigned char)c);
	if (upper.compare(0, 15, "AGE-SECRET-KEY-") == 0)
		return where + " is a secret key (an identity), not a recipient: "
			"the mail host needs only its public part "
			"(age-keygen -y), remove the secret key from the host";
	if (word.compare(0, 4, "ssh-") == 0)
		return where + " is an SSH key: only age1... X25519 recipients "
			"are supported";
	return where + " is not a valid age1... recipient";
}

bool add_words(const std::string &text, std::vector<AgeRecipient> &out,
	       std::string &error)
{
	std::istringstream words(text);
	std::string w;
	unsigned int n = 0;
	while (words >> w) {
		n++;
		AgeRecipient r;
		if (!parse_age1(w, r)) {
			error = malformed(w, "recipient " + std::to_string(n));
			return false;
		}
		out.push_back(r);
	}
	return true;
}

} // namespace

bool age_parse_recipients(const std::string &spec,
			  std::vector<AgeRecipient> &out, std::string &error)
{
	out.clear();
	size_t start = spec.find_first_not_of(" \t");
	if (start != std::string::npos && spec.compare(start, 5, "file:") == 0) {
		std::string path = spec.substr(start + 5);
		while (!path.empty() && std::isspace((unsigned char)path.back()))
			path.pop_back();
		errno = 0;
		std::ifstream in(path);
		if (!in) {
			error = "cannot read recipients file " + path +
				(errno != 0 ? std::string(": ") + strerror(errno) :
				 std::string());
			return false;
		}
		std::string line;
		unsigned n = 0;
		while (std::getline(in, line)) {
			n++;
			if (!line.empty() && line.back() == '\r')
				line.pop_back();
			if (line.empty() || line[0] == '#')
				continue;
			// As age -R: exactly one recipient per line, no blanks
			// around it (several on a line are refused).
			AgeRecipient r;
			if (!parse_age1(line, r)) {
				error = malformed(line, "line " +
					std::to_string(n) + " of " + path);
				return false;
			}
			out.push_back(r);
		}
		if (in.bad()) {
			error = "cannot read recipients file " + path;
			return false;
		}
		if (out.empty()) {
			error = "no recipients in " + path;
			return false;
		}
		return true;
	}
	// Commas too: import_environment (the login companion's form on
	// 2.3) splits its values at spaces.
	std::string words = spec;
	std::replace(words.begin(), words.end(), ',', ' ');
	if (!add_words(words, out, error))
		return false;
	if (out.empty()) {
		error = "no recipients";
		return false;
	}
	return true;
}

} // namespace rawlog_ext
