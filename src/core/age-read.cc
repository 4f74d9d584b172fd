#include "age-read.hh"
#include "age-internal.hh"
#include "age-openssl.hh"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

namespace rawlog_ext {

namespace {

constexpr size_t chunk_plain = 64 * 1024;
constexpr size_t chunk_full = chunk_plain + 16;
// No real header comes near this (a stanza is about 110 bytes): a file
// that is not age fails here instead of being held in memory.
constexpr size_t header_max = 1024 * 1024;
const char version_line[] = "age-encryption.org/v1";

// Canonical unpadded standard base64, as age writes it; false on any
// other character, padding or non-zero trailing bits.
bool b64_decode(const std::string &s, std::vector<unsigned char> &out)
{
	out.clear();
	if (s.size() % 4 == 1)
		return false;
	unsigned acc = 0;
	int bits = 0;
	for (char ch : s) {
		unsigned char c = (unsigned char)ch;
		unsigned v;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			return false;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out.push_back((unsigned char)(acc >> bits));
		}
		acc &= (1u << bits) - 1;
	}
	return acc == 0;
}

using age_detail::CipherCtx;
using age_detail::Pkey;
using age_detail::PkeyCtx;

enum class Open { ok, refused, internal };

// ChaCha20-Poly1305 open of in (ciphertext || 16-byte tag), no
// associated data, into out (n - 16 bytes, which must be room enough).
Open aead_open(const unsigned char key[32], const unsigned char nonce[12],
	       const unsigned char *in, size_t n, unsigned char *out)
{
	if (n < 16)
		return Open::refused;
	CipherCtx ctx(EVP_CIPHER_CTX_new());
	int len = 0, fin = 0;
	size_t m = n - 16;
	if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_chacha20_poly1305(),
				       nullptr, key, nonce) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, 16,
				(void *)(in + m)) != 1 ||
	    (m > 0 && EVP_DecryptUpdate(ctx.get(), out, &len, in, (int)m) != 1))
		return Open::internal;
	if (EVP_DecryptFinal_ex(ctx.get(), out + len, &fin) != 1) {
		OPENSSL_cleanse(out, m);
		return Open::refused;
	}
	return (size_t)(len + fin) == m ? Open::ok : Open::internal;
}

// The offset is error_offset(): not repeated in the message.
std::string chunk_name(uint64_t chunk, uint64_t)
{
	return "chunk " + std::to_string(chunk);
}

} // namespace

// --- identities ----------------------------------------------------------

void AgeIdentities::clear()
{
	for (auto &k : keys_)
		OPENSSL_cleanse(k.data(), k.size());
	keys_.clear();
}

bool AgeIdentities::add_text(const std::string &text, const std::string &name,
			     std::string &error)
{
	std::vector<std::array<unsigned char, 32>> found;
	auto wipe = [&found]() {
		for (auto &k : found)
			OPENSSL_cleanse(k.data(), k.size());
	};
	size_t pos = 0;
	unsigned n = 0;
	while (pos < text.size()) {
		size_t lf = text.find('\n', pos);
		size_t end = lf == std::string::npos ? text.size() : lf;
		size_t next = lf == std::string::npos ? text.size() : lf + 1;
		n++;
		// CRLF as age's line scanner; nothing else is trimmed.
		if (end > pos && text[end - 1] == '\r')
			end--;
		if (end == pos || text[pos] == '#') {
			pos = next;
			continue;
		}
		std::string line = text.substr(pos, end - pos);
		std::string hrp;
		std::vector<unsigned char> bytes;
		bool ok = line.compare(0, 15, "AGE-SECRET-KEY-") == 0 &&
			  age_detail::bech32_decode(line, hrp, bytes) &&
			  hrp == "AGE-SECRET-KEY-" && bytes.size() == 32;
		OPENSSL_cleanse(&line[0], line.size());
		if (!ok) {
			OPENSSL_cleanse(bytes.data(), bytes.size());
			wipe();
			// The line may hold a key: its number only.
			error = name + ": line " + std::to_string(n) +
				": not an age X25519 identity "
				"(AGE-SECRET-KEY-1...)";
			return false;
		}
		found.emplace_back();
		std::memcpy(found.back().data(), bytes.data(), 32);
		OPENSSL_cleanse(bytes.data(), bytes.size());
		pos = next;
	}
	if (found.empty()) {
		error = name + ": no identities (AGE-SECRET-KEY-1...)";
		return false;
	}
	keys_.insert(keys_.end(), found.begin(), found.end());
	wipe();
	return true;
}

bool AgeIdentities::add_file(const std::string &path, std::string &error)
{
	std::ifstream in(path, std::ios::binary);
	if (!in) {
		error = path + ": cannot read the identity file";
		return false;
	}
	std::string text((std::istreambuf_iterator<char>(in)),
			 std::istreambuf_iterator<char>());
	if (in.bad()) {
		OPENSSL_cleanse(&text[0], text.size());
		error = path + ": cannot read the identity file";
		return false;
	}
	bool ok = add_text(text, path, error);
	if (!text.empty())
		OPENSSL_cleanse(&text[0], text.size());
	return ok;
}

// --- the reader ----------------------------------------------------------

AgeReader::~AgeReader()
{
	OPENSSL_cleanse(file_key_, sizeof(file_key_));
	OPENSSL_cleanse(payload_key_, sizeof(payload_key_));
	if (!plain_.empty())
		OPENSSL_cleanse(plain_.data(), plain_.size());
}

bool AgeReader::altered() const
{
	switch (kind_) {
	case AgeReadError::malformed:
	case AgeReadError::header_mac:
	case AgeReadError::chunk:
	case AgeReadError::after_last:
	case AgeReadError::empty_last:
		return true;
	default:
		return false;
	}
}

bool AgeReader::refuse(AgeReadError kind, const std::string &why,
		     uint64_t offset, uint64_t chunk)
{
	failed_ = true;
	kind_ = kind;
	error_ = why;
	error_offset_ = offset;
	error_chunk_ = chunk;
	OPENSSL_cleanse(file_key_, sizeof(file_key_));
	OPENSSL_cleanse(payload_key_, sizeof(payload_key_));
	if (!plain_.empty())
		OPENSSL_cleanse(plain_.data(), plain_.size());
	return false;
}

// One recipient stanza for the identities: a malformed X25519 stanza
// refuses the file (as age does); a well-formed one that no identity
// opens is skipped.
bool AgeReader::unwrap(const std::vector<std::string> &args,
		       const std::vector<unsigned char> &body, bool &opened)
{
	std::vector<unsigned char> share;
	if (args.size() != 2 || !b64_decode(args[1], share) ||
	    share.size() != 32 || body.size() != 32)
		return false;
	static const unsigned char zero_nonce[12] = {};
	for (size_t i = 0; i < ids_.size() && !opened; i++) {
		Pkey sk(EVP_PKEY_new_raw_private_key(
			EVP_PKEY_X25519, nullptr, ids_.key(i).data(), 32));
		Pkey peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr,
						      share.data(), 32));
		unsigned char salt[64], shared[32], wrap_key[32];
		size_t len = 32;
		if (!sk || !peer ||
		    EVP_PKEY_get_raw_public_key(sk.get(), salt + 32, &len) != 1 ||
		    len != 32)
			return refuse(AgeReadError::internal, "OpenSSL failed on "
				    "a stanza", 0, 0);
		std::memcpy(salt, share.data(), 32);
		PkeyCtx ctx(EVP_PKEY_CTX_new(sk.get(), nullptr));
		len = 32;
		// OpenSSL refuses an all-zero shared secret (a low-order
		// share), as the spec requires: that stanza is not ours.
		static const unsigned char zero[32] = {};
		if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 ||
		    EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) <= 0 ||
		    EVP_PKEY_derive(ctx.get(), shared, &len) <= 0 || len != 32 ||
		    CRYPTO_memcmp(shared, zero, 32) == 0) {
			OPENSSL_cleanse(shared, sizeof(shared));
			continue;
		}
		bool ok = age_detail::hkdf_sha256(shared, 32, salt, 64,
						  "age-encryption.org/v1/X25519",
						  wrap_key);
		OPENSSL_cleanse(shared, sizeof(shared));
		Open o = ok ? aead_open(wrap_key, zero_nonce, body.data(), 32,
					file_key_) : Open::internal;
		OPENSSL_cleanse(wrap_key, sizeof(wrap_key));
		if (o == Open::internal)
			return refuse(AgeReadError::internal, "OpenSSL failed on "
				    "a stanza", 0, 0);
		opened = o == Open::ok;
	}
	return true;
}

bool AgeReader::parse_header()
{
	// header_ ends with the MAC line's '\n'.
	std::vector<std::pair<size_t, std::string>> lines;
	for (size_t pos = 0; pos < header_.size();) {
		size_t lf = header_.find('\n', pos);
		lines.emplace_back(pos, header_.substr(pos, lf - pos));
		pos = lf + 1;
	}
	auto bad = [this](const std::string &why, size_t at) {
		return refuse(AgeReadError::malformed, "malformed age header: " + why,
			    at, 0);
	};
	if (lines[0].second != version_line)
		return bad("not age-encryption.org/v1", 0);
	size_t i = 1, stanzas = 0;
	bool opened = false;
	while (lines[i].second.compare(0, 3, "---") != 0) {
		const std::string &l = lines[i].second;
		const size_t at = lines[i].first;
		if (l.compare(0, 3, "-> ") != 0)
			return bad("a line that is no stanza", at);
		std::vector<std::string> args;
		for (size_t p = 3; p <= l.size();) {
			size_t sp = std::min(l.find(' ', p), l.size());
			args.push_back(l.substr(p, sp - p));
			p = sp + 1;
		}
		for (const std::string &a : args) {
			if (a.empty())
				return bad("an empty stanza argument", at);
			for (char c : a)
				if (c < 33 || c > 126)
					return bad("a stanza argument that "
						   "is not printable", at);
		}
		// The body: full 64-column lines, then a shorter one.
		std::string b64;
		for (i++;; i++) {
			if (lines[i].second.compare(0, 3, "---") == 0)
				return bad("a stanza without its final short "
					   "line", lines[i].first);
			b64 += lines[i].second;
			if (lines[i].second.size() > 64)
				return bad("a stanza line longer than 64 "
					   "columns", lines[i].first);
			if (lines[i].second.size() < 64)
				break;
		}
		std::vector<unsigned char> body;
		if (!b64_decode(b64, body))
			return bad("a stanza body that is not canonical "
				   "base64", at);
		i++;
		stanzas++;
		if (args[0] == "X25519" && !opened) {
			if (!unwrap(args, body, opened))
				return kind_ == AgeReadError::none ?
					bad("a malformed X25519 stanza", at) :
					false;
		}
	}
	const std::string &mac_line = lines[i].second;
	const size_t mac_at = lines[i].first;
	std::vector<unsigned char> mac;
	if (mac_line.compare(0, 4, "--- ") != 0 ||
	    !b64_decode(mac_line.substr(4), mac) || mac.size() != 32)
		return bad("a malformed MAC line", mac_at);
	if (stanzas == 0)
		return bad("no recipient stanza", mac_at);
	if (!opened)
		return refuse(AgeReadError::no_identity,
			    "no identity matches a recipient of the file (it "
			    "was sealed to other keys, or a stanza was altered)",
			    0, 0);
	unsigned char mac_key[32], want[32];
	unsigned want_len = 0;
	bool ok = age_detail::hkdf_sha256(file_key_, 16, nullptr, 0, "header",
					  mac_key) &&
		  HMAC(EVP_sha256(), mac_key, 32,
		       (const unsigned char *)header_.data(), mac_at + 3, want,
		       &want_len) != nullptr && want_len == 32;
	OPENSSL_cleanse(mac_key, sizeof(mac_key));
	if (!ok)
		return refuse(AgeReadError::internal, "OpenSSL failed on the "
			    "header", mac_at, 0);
	if (CRYPTO_memcmp(want, mac.data(), 32) != 0)
		return refuse(AgeReadError::header_mac, "the header's MAC fails: "
			    "altered", mac_at, 0);
	header_done_ = true;
	offset_ = header_.size();
	std::string().swap(header_);
	return true;
}

bool AgeReader::open_chunk(const unsigned char *in, size_t n, bool last,
			   std::vector<unsigned char> &plain)
{
	// 11-byte big-endian counter, then the last-chunk flag.
	unsigned char nonce[12] = {};
	uint64_t c = counter_;
	for (int i = 10; i >= 0 && c != 0; i--, c >>= 8)
		nonce[i] = (unsigned char)(c & 0xff);
	nonce[11] = last ? 1 : 0;
	plain.resize(chunk_plain);
	Open o = aead_open(payload_key_, nonce, in, n, plain.data());
	if (o == Open::internal)
		return refuse(AgeReadError::internal, "OpenSSL failed on " +
			    chunk_name(counter_ + 1, offset_), offset_,
			    counter_ + 1);
	if (o != Open::ok)
		return false;
	plain.resize(n - 16);
	return true;
}

// buf_ holds a full chunk and more: it cannot be the last.
bool AgeReader::open_full_chunk()
{
	const uint64_t number = counter_ + 1;
	if (!open_chunk(buf_.data(), chunk_full, false, plain_)) {
		if (failed_)
			return false;
		if (open_chunk(buf_.data(), chunk_full, true, plain_))
			return refuse(AgeReadError::after_last, "data follows "
				    "the last chunk, " +
				    chunk_name(number, offset_) + ": altered",
				    offset_ + chunk_full, number);
		if (failed_)
			return false;
		return refuse(AgeReadError::chunk, chunk_name(number, offset_) +
			    " fails authentication: altered", offset_, number);
	}
	emit_(plain_.data(), plain_.size());
	OPENSSL_cleanse(plain_.data(), plain_.size());
	counter_++;
	offset_ += chunk_full;
	buf_.erase(buf_.begin(), buf_.begin() + chunk_full);
	return true;
}

bool AgeReader::feed(const void *data, size_t size)
{
	if (failed_ || finished_)
		return false;
	const unsigned char *p = (const unsigned char *)data;
	while (size > 0 && !header_done_) {
		// Byte by byte up to the MAC line's end: the header is small.
		unsigned char c = *p++;
		size--;
		header_ += (char)c;
		const size_t n = header_.size();
		if (n <= sizeof(version_line) - 1 &&
		    header_[n - 1] != version_line[n - 1])
			return refuse(AgeReadError::malformed, "not an age v1 file "
				    "(no age-encryption.org/v1 line)", 0, 0);
		if (n > header_max)
			return refuse(AgeReadError::malformed, "malformed age "
				    "header: longer than 1 MiB", 0, 0);
		if (c != '\n')
			continue;
		size_t start = header_.rfind('\n', n - 2);
		start = start == std::string::npos ? 0 : start + 1;
		if (header_.compare(start, 3, "---") == 0 && !parse_header())
			return false;
	}
	if (header_done_ && nonce_have_ < sizeof(nonce_) && size > 0) {
		size_t take = std::min(size, sizeof(nonce_) - nonce_have_);
		std::memcpy(nonce_ + nonce_have_, p, take);
		nonce_have_ += take;
		p += take;
		size -= take;
		offset_ += take;
		if (nonce_have_ == sizeof(nonce_)) {
			bool ok = age_detail::hkdf_sha256(file_key_, 16, nonce_,
							  16, "payload",
							  payload_key_);
			OPENSSL_cleanse(file_key_, sizeof(file_key_));
			if (!ok)
				return refuse(AgeReadError::internal, "OpenSSL "
					    "failed on the payload key",
					    offset_, 0);
		}
	}
	// Constant memory: at most one chunk and one byte are held.
	while (size > 0) {
		size_t take = std::min(size, chunk_full + 1 - buf_.size());
		buf_.insert(buf_.end(), p, p + take);
		p += take;
		size -= take;
		if (buf_.size() > chunk_full && !open_full_chunk())
			return false;
	}
	return true;
}

bool AgeReader::finish()
{
	if (failed_)
		return false;
	if (finished_)
		return true;
	finished_ = true;
	if (!header_done_)
		return refuse(AgeReadError::malformed, header_.empty() ?
			    "empty file, not age" :
			    "malformed age header: the file ends inside it",
			    header_.size(), 0);
	if (nonce_have_ < sizeof(nonce_) || (buf_.empty() && counter_ == 0))
		return refuse(AgeReadError::truncated, "truncated: ends before "
			    "its first chunk, the session may have died",
			    offset_, 0);
	const uint64_t number = counter_ + 1;
	const size_t n = buf_.size();
	if (open_chunk(buf_.data(), n, true, plain_)) {
		if (plain_.empty() && counter_ > 0)
			return refuse(AgeReadError::empty_last, chunk_name(number,
				    offset_) + " is an empty last chunk after "
				    "others: altered", offset_, number);
		if (!plain_.empty())
			emit_(plain_.data(), plain_.size());
		OPENSSL_cleanse(plain_.data(), plain_.size());
		counter_++;
		return true;
	}
	if (failed_)
		return false;
	if (open_chunk(buf_.data(), n, false, plain_)) {
		if (n < chunk_full)
			return refuse(AgeReadError::chunk, chunk_name(number,
				    offset_) + " is short but not the last: "
				    "altered", offset_, number);
		// Authentic, but not the last: the writer never sealed its
		// final chunk.
		emit_(plain_.data(), plain_.size());
		OPENSSL_cleanse(plain_.data(), plain_.size());
		counter_++;
		return refuse(AgeReadError::truncated, "truncated: ends after "
			    "chunk " + std::to_string(number) + ", the session "
			    "may have died", offset_ + n, number);
	}
	if (failed_)
		return false;
	return refuse(AgeReadError::chunk, chunk_name(number, offset_) +
		    " fails authentication: altered" +
		    // A kill -9 can cut a write(2) short: the sealed chunks
		    // before it are intact either way.
		    (n < chunk_full ? ", or cut inside it (the session may "
		     "have died while writing it)" : ""), offset_,
		    number);
}

} // namespace rawlog_ext
