// Shared by the age writer (age.cc) and reader (age-read.cc) only.
#ifndef RAWLOG_EXT_CORE_AGE_INTERNAL_HH
#define RAWLOG_EXT_CORE_AGE_INTERNAL_HH

#include <cstddef>
#include <string>
#include <vector>

namespace rawlog_ext {
namespace age_detail {

// BIP 173 bech32 (not bech32m, no length limit, as age): hrp as written,
// the data as bytes. false on a bad checksum, mixed case, bad padding.
bool bech32_decode(const std::string &in, std::string &hrp,
		   std::vector<unsigned char> &bytes);

// HKDF-SHA256 to 32 bytes; an empty salt is none.
bool hkdf_sha256(const unsigned char *ikm, size_t ikm_len,
		 const unsigned char *salt, size_t salt_len, const char *info,
		 unsigned char out[32]);

} // namespace age_detail
} // namespace rawlog_ext

#endif
