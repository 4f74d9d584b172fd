#include "age.hh"
#include "age-internal.hh"
#include "age-openssl.hh"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace rawlog_ext {

namespace {

const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// age uses standard base64 without padding.
std::string b64_nopad(const unsigned char *p, size_t n)
{
	std::string s;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		unsigned v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
		s += b64_alphabet[(v >> 18) & 63];
		s += b64_alphabet[(v >> 12) & 63];
		s += b64_alphabet[(v >> 6) & 63];
		s += b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		unsigned v = p[i] << 16;
		s += b64_alphabet[(v >> 18) & 63];
		s += b64_alphabet[(v >> 12) & 63];
	} else if (n - i == 2) {
		unsigned v = (p[i] << 16) | (p[i + 1] << 8);
		s += b64_alphabet[(v >> 18) & 63];
		s += b64_alphabet[(v >> 12) & 63];
		s += b64_alphabet[(v >> 6) & 63];
	}
	return s;
}

using age_detail::CipherCtx;
using age_detail::Pkey;
using age_detail::PkeyCtx;

// ChaCha20-Poly1305 with a 12-byte nonce, no associated data: out gets
// ciphertext || 16-byte tag.
bool aead_seal(const unsigned char key[32], const unsigned char nonce[12],
	       const unsigned char *in, size_t n, std::string &out)
{
	CipherCtx ctx(EVP_CIPHER_CTX_new());
	if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_chacha20_poly1305(),
				       nullptr, key, nonce) != 1)
		return false;
	size_t base = out.size();
	out.resize(base + n + 16);
	unsigned char *p = (unsigned char *)&out[base];
	int len = 0, fin = 0;
	if ((n > 0 && EVP_EncryptUpdate(ctx.get(), p, &len, in, (int)n) != 1) ||
	    EVP_EncryptFinal_ex(ctx.get(), p + len, &fin) != 1 ||
	    (size_t)(len + fin) != n ||
	    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, 16,
				p + n) != 1) {
		out.resize(base);
		return false;
	}
	return true;
}

// One "-> X25519" stanza wrapping file_key for recipient.
bool x25519_stanza(const AgeRecipient &recipient,
		   const unsigned char file_key[16], std::string &out)
{
	PkeyCtx kctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
	EVP_PKEY *raw = nullptr;
	if (!kctx || EVP_PKEY_keygen_init(kctx.get()) <= 0 ||
	    EVP_PKEY_keygen(kctx.get(), &raw) <= 0)
		return false;
	Pkey eph(raw);
	Pkey peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr,
					      recipient.data(), 32));
	unsigned char share[32];
	size_t share_len = 32;
	if (!peer || EVP_PKEY_get_raw_public_key(eph.get(), share,
						 &share_len) != 1 ||
	    share_len != 32)
		return false;
	PkeyCtx dctx(EVP_PKEY_CTX_new(eph.get(), nullptr));
	unsigned char shared[32];
	size_t shared_len = 32;
	bool ok = dctx && EVP_PKEY_derive_init(dctx.get()) > 0 &&
		  EVP_PKEY_derive_set_peer(dctx.get(), peer.get()) > 0 &&
		  EVP_PKEY_derive(dctx.get(), shared, &shared_len) > 0 &&
		  shared_len == 32;
	unsigned char salt[64];
	std::memcpy(salt, share, 32);
	std::memcpy(salt + 32, recipient.data(), 32);
	unsigned char wrap_key[32];
	static const unsigned char zero_nonce[12] = {};
	std::string body;
	ok = ok && age_detail::hkdf_sha256(shared, 32, salt, 64,
					   "age-encryption.org/v1/X25519",
					   wrap_key) &&
	     aead_seal(wrap_key, zero_nonce, file_key, 16, body);
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(wrap_key, sizeof(wrap_key));
	if (!ok)
		return false;
	// 32 bytes of body: 43 base64 characters, one short final line.
	out += "-> X25519 " + b64_nopad(share, 32) + "\n" +
	       b64_nopad((const unsigned char *)body.data(), body.size()) +
	       "\n";
	return true;
}

}

AgeWriter::~AgeWriter()
{
	OPENSSL_cleanse(payload_key_, sizeof(payload_key_));
	if (!tail_.empty())
		OPENSSL_cleanse(tail_.data(), tail_.size());
}

bool AgeWriter::begin(const std::vector<AgeRecipient> &recipients,
		      std::string &out, std::string &error)
{
	// A second begin() is refused and leaves the open file as it was.
	if (started_) {
		error = "age: writer already started";
		return false;
	}
	if (recipients.empty()) {
		error = "age: no recipients";
		failed_ = true;
		return false;
	}
	started_ = true;
	unsigned char file_key[16], mac_key[32], nonce[16];
	std::string header = "age-encryption.org/v1\n";
	bool ok = RAND_bytes(file_key, sizeof(file_key)) == 1 &&
		  RAND_bytes(nonce, sizeof(nonce)) == 1;
	for (size_t i = 0; ok && i < recipients.size(); i++)
		ok = x25519_stanza(recipients[i], file_key, header);
	header += "---";
	unsigned char mac[32];
	unsigned mac_len = 0;
	ok = ok && age_detail::hkdf_sha256(file_key, 16, nullptr, 0, "header",
					   mac_key) &&
	     HMAC(EVP_sha256(), mac_key, 32,
		  (const unsigned char *)header.data(), header.size(), mac,
		  &mac_len) != nullptr &&
	     mac_len == 32 &&
	     age_detail::hkdf_sha256(file_key, 16, nonce, 16, "payload",
				     payload_key_);
	OPENSSL_cleanse(file_key, sizeof(file_key));
	OPENSSL_cleanse(mac_key, sizeof(mac_key));
	if (!ok) {
		error = "age: OpenSSL failed writing the header";
		failed_ = true;
		return false;
	}
	out += header + " " + b64_nopad(mac, 32) + "\n";
	out.append((const char *)nonce, sizeof(nonce));
	tail_.reserve(age_chunk_size);
	return true;
}

bool AgeWriter::seal(bool last, std::string &out, std::string &error)
{
	// Nonce: 11-byte big-endian chunk counter, then the last-chunk flag.
	unsigned char nonce[12] = {};
	unsigned long long c = counter_;
	for (int i = 10; i >= 0 && c != 0; i--, c >>= 8)
		nonce[i] = (unsigned char)(c & 0xff);
	nonce[11] = last ? 1 : 0;
	size_t n = last ? tail_.size() : age_chunk_size;
	if (!aead_seal(payload_key_, nonce, tail_.data(), n, out)) {
		error = "age: OpenSSL failed sealing a chunk";
		failed_ = true;
		return false;
	}
	OPENSSL_cleanse(tail_.data(), n);
	tail_.erase(tail_.begin(), tail_.begin() + n);
	counter_++;
	return true;
}

bool AgeWriter::write(const unsigned char *data, size_t size,
		      std::string &out, std::string &error)
{
	if (!started_ || finished_ || failed_) {
		error = "age: writer not open";
		return false;
	}
	while (size > 0) {
		// A full chunk is sealed only once more data shows it is not
		// the last: the format's final chunk may be full.
		if (tail_.size() == age_chunk_size && !seal(false, out, error))
			return false;
		size_t take = std::min(size, age_chunk_size - tail_.size());
		tail_.insert(tail_.end(), data, data + take);
		data += take;
		size -= take;
	}
	return true;
}

bool AgeWriter::finish(std::string &out, std::string &error)
{
	if (!started_ || finished_ || failed_) {
		error = "age: writer not open";
		return false;
	}
	finished_ = true;
	bool ok = seal(true, out, error);
	OPENSSL_cleanse(payload_key_, sizeof(payload_key_));
	return ok;
}

namespace age_detail {

bool hkdf_sha256(const unsigned char *ikm, size_t ikm_len,
		 const unsigned char *salt, size_t salt_len, const char *info,
		 unsigned char out[32])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
	size_t len = 32;
	bool ok = ctx && EVP_PKEY_derive_init(ctx) > 0 &&
	       EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
	       (salt_len == 0 ||
		EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, (int)salt_len) > 0) &&
	       EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, (int)ikm_len) > 0 &&
	       EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info,
					   (int)std::strlen(info)) > 0 &&
	       EVP_PKEY_derive(ctx, out, &len) > 0 && len == 32;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

} // namespace age_detail

}
