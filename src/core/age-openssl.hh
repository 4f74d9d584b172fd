// OpenSSL objects owned by unique_ptr, for the age writer (age.cc) and
// reader (age-read.cc) only: the core has no OpenSSL.
#ifndef RAWLOG_EXT_CORE_AGE_OPENSSL_HH
#define RAWLOG_EXT_CORE_AGE_OPENSSL_HH

#include <memory>
#include <openssl/evp.h>

namespace rawlog_ext {
namespace age_detail {

struct PkeyFree {
	void operator()(EVP_PKEY *p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
	void operator()(EVP_PKEY_CTX *p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
	void operator()(EVP_CIPHER_CTX *p) const { EVP_CIPHER_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

} // namespace age_detail
} // namespace rawlog_ext

#endif
