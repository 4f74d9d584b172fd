// age v1 reader: identity files, files our writer sealed read back in any
// pieces, and every kind of damage classified with its chunk, under
// valgrind (files Debian's age wrote are read in test-age-interop).
// <fstream> before cmocka: its fail() macro would hit basic_ios::fail.
#include <fstream>

#include "test-age-common.hh"

#include "core/age-internal.hh"
#include "core/age-read.hh"

#include <openssl/evp.h>

using namespace rawlog_ext;

namespace {

// Test keys age-keygen made for this file only (public as the test is).
const char k1[] = "AGE-SECRET-KEY-1NE24K3QA3G5X5A73NT6NK08RV2WXRJFZRQSCCNH9A7YP7Q5REDXS04C6ZX";
const char r1[] = "age1p3y9eqvtcae904kx485zq6kczj5achgqmapa93x32jknugrvqaeqeg8qxy";
const char k2[] = "AGE-SECRET-KEY-1URWGXNY3DKU06SQN3X2YV54ETFXRX4SVHGN62P7NZW694PKF9S3Q69ZFD7";
const char r2[] = "age10gttwywcrxv5m4wrqv90y23naksnc5cnprhnh5lgnwzfq8wd9q7su54qsa";
const char k3[] = "AGE-SECRET-KEY-1UC6Q6PYNYMVWEWX0WNJLD4E9079H8SPUPL5CXZME2VTSP34YKCZQC623V6";

constexpr size_t full = age_chunk_size + 16;

struct Read {
	std::string plain;
	bool ok;
	AgeReadError kind;
	uint64_t chunk;
	uint64_t offset;
	std::string error;
};

Read decrypt(const AgeIdentities &ids, const std::string &file, size_t piece)
{
	Read r;
	AgeReader reader(ids, [&r](const unsigned char *p, size_t n) {
		assert_true(n > 0);
		r.plain.append((const char *)p, n);
	});
	bool ok = true;
	for (size_t i = 0; i < file.size() && ok; i += piece)
		ok = reader.feed(file.data() + i,
				 std::min(piece, file.size() - i));
	r.ok = ok && reader.finish();
	r.kind = reader.kind();
	r.chunk = reader.error_chunk();
	r.offset = reader.error_offset();
	r.error = reader.error();
	assert_true(r.ok == (r.kind == AgeReadError::none));
	if (!r.ok)
		assert_false(r.error.empty());
	return r;
}

// The same, and the result must not depend on the feeding.
Read decrypt(const AgeIdentities &ids, const std::string &file)
{
	Read whole = decrypt(ids, file, file.size() + 1);
	for (size_t piece : { (size_t)1000, (size_t)65536, full + 1 }) {
		Read r = decrypt(ids, file, piece);
		assert_true(r.ok == whole.ok && r.kind == whole.kind &&
			    r.chunk == whole.chunk && r.offset == whole.offset &&
			    r.plain == whole.plain);
	}
	return whole;
}

void ids_of(AgeIdentities &ids, const std::string &keys)
{
	std::string err;
	assert_true(ids.add_text(keys, "test", err));
}

std::vector<AgeRecipient> rcpts(const std::string &spec)
{
	std::vector<AgeRecipient> rs;
	std::string err;
	assert_true(age_parse_recipients(spec, rs, err));
	return rs;
}

// Where the payload starts: after the MAC line and the 16-byte nonce.
size_t payload_start(const std::string &f)
{
	size_t mac = f.find("\n--- ");
	assert_true(mac != std::string::npos);
	return f.find('\n', mac + 1) + 1 + 16;
}

void test_identity_files(void **state)
{
	TmpDir &dir = *(TmpDir *)*state;
	std::string err;
	{
		AgeIdentities ids;
		// As age -i: comments, empty lines, CRLF, several keys.
		spit(dir.path("keys"), std::string("# created: now\n\n") + k1 +
		     "\r\n# public key: x\n" + k2 + "\n");
		assert_true(ids.add_file(dir.path("keys"), err));
		assert_int_equal(ids.size(), 2);
		// add_file adds: a second file (age -i twice).
		spit(dir.path("more"), std::string(k3));
		assert_true(ids.add_file(dir.path("more"), err));
		assert_int_equal(ids.size(), 3);
	}
	// What Debian's age refuses (checked with age 1.1.1).
	const std::string refused[] = {
		std::string(" ") + k1 + "\n",		// leading blank
		std::string(k1) + " \n",		// trailing blank
		"# only a comment\n",			// no key
		"",
		r1 + std::string("\n"),			// a recipient
		"age-secret-key-1ne24k3qa3g5x5a73nt6nk08rv2wxrjfzrqsccnh9a7yp7q5redxs04c6zx\n",
		std::string(k1).substr(0, 60) + "\n",	// bad checksum
		std::string(k1) + "\n" + k2 + "X\n",	// one bad among good
	};
	for (const std::string &text : refused) {
		AgeIdentities ids;
		spit(dir.path("bad"), text);
		assert_false(ids.add_file(dir.path("bad"), err));
		assert_int_equal(ids.size(), 0);
		assert_non_null(strstr(err.c_str(), dir.path("bad").c_str()));
		// No key material in the message.
		assert_null(strstr(err.c_str(), "1NE24K"));
		assert_null(strstr(err.c_str(), "1URWG"));
	}
	AgeIdentities ids;
	spit(dir.path("bad"), std::string("# x\n") + k1 + "\n" + k2 + "X\n");
	assert_false(ids.add_file(dir.path("bad"), err));
	assert_non_null(strstr(err.c_str(), "line 3"));
	assert_false(ids.add_file(dir.path("missing"), err));
	assert_non_null(strstr(err.c_str(), "missing"));
}

void test_round_trip(void **)
{
	AgeIdentities ids;
	ids_of(ids, k1);
	auto rs = rcpts(r1);
	const size_t sizes[] = { 0, 1, 1000, age_chunk_size - 1, age_chunk_size,
				 age_chunk_size + 1, 2 * age_chunk_size,
				 3 * age_chunk_size + 5 };
	for (size_t size : sizes) {
		std::string plain = pattern(size);
		unsigned long long chunks = 0;
		std::string f = seal(rs, plain, 5000, &chunks);
		Read r = decrypt(ids, f);
		assert_true(r.ok);
		assert_int_equal(r.plain.size(), plain.size());
		assert_true(r.plain == plain);
		AgeReader reader(ids, [](const unsigned char *, size_t) {});
		assert_true(reader.feed(f.data(), f.size()));
		assert_true(reader.finish());
		assert_int_equal(reader.chunks(), chunks);
	}
	// Byte by byte, once (header and chunk edges in every position).
	std::string plain = pattern(age_chunk_size + 3);
	Read r = decrypt(ids, seal(rs, plain, 999), 1);
	assert_true(r.ok && r.plain == plain);
}

void test_recipients_and_identities(void **)
{
	auto rs = rcpts(std::string(r1) + " " + r2);
	std::string plain = pattern(100000);
	std::string f = seal(rs, plain, 65536);
	for (const char *k : { k1, k2 }) {
		AgeIdentities ids;
		ids_of(ids, k);
		Read r = decrypt(ids, f);
		assert_true(r.ok && r.plain == plain);
	}
	// Among other identities.
	AgeIdentities many;
	ids_of(many, std::string(k3) + "\n" + k2 + "\n");
	assert_true(decrypt(many, f).ok);
	// No identity matching: its own error, nothing handed out.
	AgeIdentities wrong;
	ids_of(wrong, k3);
	Read r = decrypt(wrong, f);
	assert_int_equal(r.kind, AgeReadError::no_identity);
	assert_int_equal(r.chunk, 0);
	assert_true(r.plain.empty());
	assert_non_null(strstr(r.error.c_str(), "no identity"));
}

// Swaps a base64 character for another valid one (stays canonical at
// the first character of a group).
void flip_b64(std::string &f, size_t at)
{
	f[at] = f[at] == 'A' ? 'B' : 'A';
}

void test_tampering(void **)
{
	AgeIdentities ids;
	ids_of(ids, k1);
	auto rs = rcpts(r1);
	std::string plain = pattern(3 * age_chunk_size + 100); // 4 chunks
	const std::string f = seal(rs, plain, 65536);
	const size_t p = payload_start(f);
	assert_int_equal(f.size(), p + 3 * full + 116);
	auto check = [&](const std::string &t, AgeReadError kind,
			 uint64_t chunk, uint64_t offset, size_t plain_bytes) {
		Read r = decrypt(ids, t);
		assert_false(r.ok);
		assert_int_equal(r.kind, kind);
		assert_int_equal(r.chunk, chunk);
		assert_int_equal(r.offset, offset);
		// Only authenticated chunks were handed out.
		assert_int_equal(r.plain.size(), plain_bytes);
		assert_true(r.plain == plain.substr(0, plain_bytes));
		return r;
	};
	std::string t = f;
	t[3] ^= 1; // the version line
	check(t, AgeReadError::malformed, 0, 0, 0);
	// The header's MAC.
	t = f;
	size_t mac = f.find("\n--- ") + 1;
	flip_b64(t, mac + 4);
	Read r = check(t, AgeReadError::header_mac, 0, mac, 0);
	assert_non_null(strstr(r.error.c_str(), "altered"));
	// A stanza's body: the only stanza, so no identity opens it (age
	// cannot tell that from other keys either).
	t = f;
	flip_b64(t, f.find('\n', f.find("-> X25519")) + 1);
	check(t, AgeReadError::no_identity, 0, 0, 0);
	// The payload nonce: the first chunk fails.
	t = f;
	t[p - 3] ^= 1;
	check(t, AgeReadError::chunk, 1, p, 0);
	// A middle chunk.
	t = f;
	t[p + full + 100] ^= 1;
	r = check(t, AgeReadError::chunk, 2, p + full, age_chunk_size);
	assert_non_null(strstr(r.error.c_str(), "chunk 2"));
	// The last chunk.
	t = f;
	t[f.size() - 1] ^= 1;
	check(t, AgeReadError::chunk, 4, p + 3 * full, 3 * age_chunk_size);
	// A chunk removed; two swapped.
	t = f.substr(0, p + full) + f.substr(p + 2 * full);
	check(t, AgeReadError::chunk, 2, p + full, age_chunk_size);
	t = f.substr(0, p) + f.substr(p + full, full) + f.substr(p, full) +
	    f.substr(p + 2 * full);
	check(t, AgeReadError::chunk, 1, p, 0);
	// Truncated at a chunk boundary: not altered, all of it shown.
	for (uint64_t n : { 3, 1 }) {
		t = f.substr(0, p + n * full);
		r = check(t, AgeReadError::truncated, n, t.size(),
			  n * age_chunk_size);
		assert_non_null(strstr(r.error.c_str(), "truncated"));
		assert_non_null(strstr(r.error.c_str(),
				       ("after chunk " + std::to_string(n)).c_str()));
		AgeReader reader(ids, [](const unsigned char *, size_t) {});
		assert_true(reader.feed(t.data(), t.size()));
		assert_false(reader.finish());
		assert_false(reader.altered());
	}
	// ... before the first chunk (no chunk sealed yet), or even inside
	// the payload nonce.
	check(f.substr(0, p), AgeReadError::truncated, 0, p, 0);
	check(f.substr(0, p - 5), AgeReadError::truncated, 0, p - 5, 0);
	// Cut inside a chunk: that chunk fails.
	t = f.substr(0, p + full + 100);
	r = check(t, AgeReadError::chunk, 2, p + full, age_chunk_size);
	assert_non_null(strstr(r.error.c_str(), "cut inside"));
	check(f.substr(0, p + full + 5), AgeReadError::chunk, 2, p + full,
	      age_chunk_size);
	check(f.substr(0, f.size() - 1), AgeReadError::chunk, 4, p + 3 * full,
	      3 * age_chunk_size);
	// Cut inside the header.
	check(f.substr(0, mac + 10), AgeReadError::malformed, 0, mac + 10, 0);
	check("", AgeReadError::malformed, 0, 0, 0);
	// Trailing garbage after a short last chunk fails that chunk.
	check(f + "x", AgeReadError::chunk, 4, p + 3 * full, 3 * age_chunk_size);
	{
		AgeReader reader(ids, [](const unsigned char *, size_t) {});
		assert_true(reader.feed((f + "x").data(), f.size() + 1));
		assert_false(reader.finish());
		assert_true(reader.altered());
	}
}

// Files whose last chunk is full: what follows it is told apart.
void test_after_the_last_chunk(void **)
{
	AgeIdentities ids;
	ids_of(ids, k1);
	std::string plain = pattern(2 * age_chunk_size);
	const std::string f = seal(rcpts(r1), plain, 65536);
	const size_t p = payload_start(f);
	assert_int_equal(f.size(), p + 2 * full);
	for (const std::string &junk : { std::string("x"), std::string(40, 'y'),
					 f.substr(p + full) }) {
		// The last chunk again is "a chunk after the last".
		Read r = decrypt(ids, f + junk);
		assert_int_equal(r.kind, AgeReadError::after_last);
		assert_int_equal(r.chunk, 2);
		assert_int_equal(r.offset, p + 2 * full);
		assert_true(r.plain == plain.substr(0, age_chunk_size));
	}
	// Its first chunk alone is "truncated" (it is full and not last).
	Read r = decrypt(ids, f.substr(0, p + full));
	assert_int_equal(r.kind, AgeReadError::truncated);
	assert_int_equal(r.chunk, 1);
	// An empty input is one empty last chunk, the only one: intact.
	std::string empty = seal(rcpts(r1), "", 1);
	assert_int_equal(empty.size(), payload_start(empty) + 16);
	r = decrypt(ids, empty);
	assert_true(r.ok && r.plain.empty());
}

// Chunks no writer of ours makes, sealed with the file's own payload
// key (found as a reader finds it, from k1 and the file's one stanza):
// what the format's rules refuse although each chunk authenticates.
std::vector<unsigned char> b64(const std::string &s)
{
	std::vector<unsigned char> out;
	unsigned acc = 0;
	int bits = 0;
	for (char c : s) {
		acc = acc << 6 | (unsigned)(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"abcdefghijklmnopqrstuvwxyz0123456789+/", c) -
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			"0123456789+/");
		if ((bits += 6) >= 8)
			out.push_back((unsigned char)(acc >> (bits -= 8)));
	}
	return out;
}

void aead(const unsigned char *key, const unsigned char nonce[12],
	  const std::string &in, std::string &out, bool decrypt)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	assert_non_null(ctx);
	int len = 0;
	unsigned char buf[64 + 16];
	size_t n = decrypt ? in.size() - 16 : in.size();
	assert_true(n <= 64);
	assert_int_equal(EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), nullptr,
					   key, nonce, decrypt ? 0 : 1), 1);
	if (decrypt)
		assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG,
			16, (void *)(in.data() + n)), 1);
	if (n > 0)
		assert_int_equal(EVP_CipherUpdate(ctx, buf, &len,
			(const unsigned char *)in.data(), (int)n), 1);
	assert_int_equal(EVP_CipherFinal_ex(ctx, buf + len, &len), 1);
	if (!decrypt)
		assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG,
						     16, buf + n), 1);
	out.assign((const char *)buf, decrypt ? n : n + 16);
	EVP_CIPHER_CTX_free(ctx);
}

// A chunk of plain (<= 64 bytes) with the given counter and flag.
std::string craft_chunk(const std::string &f, uint64_t counter, bool last,
			const std::string &plain)
{
	std::string hrp;
	std::vector<unsigned char> secret;
	assert_true(age_detail::bech32_decode(k1, hrp, secret));
	size_t line = f.find("-> X25519 ") + 10;
	std::vector<unsigned char> share =
		b64(f.substr(line, f.find('\n', line) - line));
	size_t body = f.find('\n', line) + 1;
	std::string wrapped;
	for (unsigned char c : b64(f.substr(body, f.find('\n', body) - body)))
		wrapped += (char)c;
	EVP_PKEY *sk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr,
						    secret.data(), 32);
	EVP_PKEY *peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr,
						     share.data(), 32);
	unsigned char salt[64], shared[32], wrap[32], payload[32];
	size_t len = 32;
	memcpy(salt, share.data(), 32);
	assert_int_equal(EVP_PKEY_get_raw_public_key(sk, salt + 32, &len), 1);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(sk, nullptr);
	assert_true(EVP_PKEY_derive_init(ctx) > 0 &&
		    EVP_PKEY_derive_set_peer(ctx, peer) > 0 &&
		    EVP_PKEY_derive(ctx, shared, &len) > 0);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(peer);
	assert_true(age_detail::hkdf_sha256(shared, 32, salt, 64,
					    "age-encryption.org/v1/X25519", wrap));
	static const unsigned char zero[12] = {};
	std::string file_key;
	aead(wrap, zero, wrapped, file_key, true);
	assert_int_equal(file_key.size(), 16);
	const size_t nonce_at = payload_start(f) - 16;
	assert_true(age_detail::hkdf_sha256(
		(const unsigned char *)file_key.data(), 16,
		(const unsigned char *)f.data() + nonce_at, 16, "payload",
		payload));
	unsigned char nonce[12] = {};
	for (int i = 10; i >= 0; i--, counter >>= 8)
		nonce[i] = (unsigned char)(counter & 0xff);
	nonce[11] = last ? 1 : 0;
	std::string out;
	aead(payload, nonce, plain, out, false);
	return out;
}

void test_format_rules(void **)
{
	AgeIdentities ids;
	ids_of(ids, k1);
	// Chunk 1 full and not last, chunk 2 "x" and last.
	const std::string plain = pattern(age_chunk_size) + "x";
	const std::string f = seal(rcpts(r1), plain, 65536);
	const size_t p = payload_start(f);
	assert_int_equal(f.size(), p + full + 17);
	const std::string head = f.substr(0, p + full);
	// The helper seals as the writer does: the same last chunk.
	assert_true(craft_chunk(f, 1, true, "x") == f.substr(p + full));
	Read r = decrypt(ids, head + craft_chunk(f, 1, true, "hello"));
	assert_true(r.ok && r.plain == plain.substr(0, age_chunk_size) + "hello");
	// An empty last chunk after another: refused (only an empty file's
	// one chunk may be empty).
	r = decrypt(ids, head + craft_chunk(f, 1, true, ""));
	assert_int_equal(r.kind, AgeReadError::empty_last);
	assert_int_equal(r.chunk, 2);
	assert_int_equal(r.offset, p + full);
	// A short chunk not marked last, empty or not, ending the file.
	for (const char *text : { "", "x" }) {
		r = decrypt(ids, head + craft_chunk(f, 1, false, text));
		assert_int_equal(r.kind, AgeReadError::chunk);
		assert_int_equal(r.chunk, 2);
		assert_non_null(strstr(r.error.c_str(), "not the last"));
	}
	// ... or followed by the real last chunk (with counter 2).
	r = decrypt(ids, head + craft_chunk(f, 1, false, "") +
			 craft_chunk(f, 2, true, "x"));
	assert_int_equal(r.kind, AgeReadError::chunk);
	assert_int_equal(r.chunk, 2);
	// A chunk after a short last one: to the reader both are one piece,
	// which fails (test_after_the_last_chunk: after a full last one).
	r = decrypt(ids, f + craft_chunk(f, 2, true, "y"));
	assert_int_equal(r.kind, AgeReadError::chunk);
	assert_int_equal(r.chunk, 2);
	assert_true(r.plain == plain.substr(0, age_chunk_size));
}

void test_two_recipients_tampered(void **)
{
	// The second stanza altered: the first identity still opens the
	// file key, and the header MAC then shows the change.
	auto rs = rcpts(std::string(r1) + " " + r2);
	const std::string f = seal(rs, pattern(10), 10);
	std::string t = f;
	size_t second = f.find("-> X25519", f.find("-> X25519") + 1);
	flip_b64(t, f.find('\n', second) + 1);
	AgeIdentities ids;
	ids_of(ids, k1);
	Read r = decrypt(ids, t);
	assert_int_equal(r.kind, AgeReadError::header_mac);
	assert_int_equal(r.chunk, 0);
	// ... and a stanza of an unknown type is skipped, but it is part of
	// the MAC too.
	t = f;
	t.replace(second + 3, 6, "X25518");
	r = decrypt(ids, t);
	assert_int_equal(r.kind, AgeReadError::header_mac);
	// Broken stanza syntax is refused as such, in every stanza (even
	// after one opened).
	t = f;
	t.insert(second + 9, " ");
	r = decrypt(ids, t);
	assert_int_equal(r.kind, AgeReadError::malformed);
	assert_int_equal(r.offset, second);
}

}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity_files, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_recipients_and_identities),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_after_the_last_chunk),
		cmocka_unit_test(test_format_rules),
		cmocka_unit_test(test_two_recipients_tampered),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
