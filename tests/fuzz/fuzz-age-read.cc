// libFuzzer target for the age reader (src/core/age-read.cc), with the
// writer (age.cc) making files to damage.
//
// Input: b0 % 2 == 0: the rest is a file, fed to the reader in pieces of
// 1 + b0 / 2 bytes. Otherwise the rest (after 4 more bytes: repeat count,
// damage kind, damage position) is plaintext, repeated to span chunks,
// sealed by our writer to the reader's identity and then damaged: a
// flipped byte, a cut, or bytes appended.
// Checked:
//   - never a crash, a hang or undefined behaviour, whatever the bytes;
//   - the result does not depend on how the input is fed;
//   - an intact file reads back to exactly its plaintext;
//   - a damaged one is refused, and only a prefix of the plaintext, in
//     whole chunks, was handed out; "truncated" only at a chunk boundary.
//
// Built with -DRAWLOG_EXT_FUZZ_DRIVER it has its own main() (no libFuzzer
// needed; tests/fuzz/fuzz-driver.hh).
#include "core/age-read.hh"
#include "core/age.hh"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace rawlog_ext;

namespace {

// A test key age-keygen made (tests/unit/test-age-read.cc has it too).
const char key[] = "AGE-SECRET-KEY-1NE24K3QA3G5X5A73NT6NK08RV2WXRJFZRQSCCNH9A7YP7Q5REDXS04C6ZX";
const char recipient[] = "age1p3y9eqvtcae904kx485zq6kczj5achgqmapa93x32jknugrvqaeqeg8qxy";

struct Result {
	std::string plain;
	bool ok;
	AgeReadError kind;
	uint64_t offset, chunk, chunks;
};

const AgeIdentities &identities()
{
	static AgeIdentities ids;
	if (ids.size() == 0) {
		std::string err;
		if (!ids.add_text(key, "fuzz", err))
			abort();
	}
	return ids;
}

Result read(const std::string &file, size_t step)
{
	Result r;
	AgeReader reader(identities(), [&r](const unsigned char *p, size_t n) {
		if (n == 0)
			abort();
		r.plain.append((const char *)p, n);
	});
	bool ok = true;
	for (size_t i = 0; i < file.size() && ok; i += step)
		ok = reader.feed(file.data() + i,
				 file.size() - i < step ? file.size() - i : step);
	r.ok = ok && reader.finish();
	r.kind = reader.kind();
	r.offset = reader.error_offset();
	r.chunk = reader.error_chunk();
	r.chunks = reader.chunks();
	if (r.ok != (r.kind == AgeReadError::none) ||
	    (!r.ok && reader.error().empty()))
		abort();
	return r;
}

void same(const Result &a, const Result &b)
{
	if (a.ok != b.ok || a.kind != b.kind || a.offset != b.offset ||
	    a.chunk != b.chunk || a.plain != b.plain || a.chunks != b.chunks) {
		fprintf(stderr, "feeding whole and in pieces differ\n");
		abort();
	}
}

Result read_all_ways(const std::string &file, size_t step)
{
	Result whole = read(file, file.size() + 1);
	same(whole, read(file, step));
	same(whole, read(file, 65537));
	return whole;
}

std::string seal(const std::string &plain)
{
	static std::vector<AgeRecipient> rs;
	std::string out, err;
	if (rs.empty() && !age_parse_recipients(recipient, rs, err))
		abort();
	AgeWriter w;
	if (!w.begin(rs, out, err) ||
	    !w.write((const unsigned char *)plain.data(), plain.size(), out,
		     err) ||
	    !w.finish(out, err))
		abort();
	return out;
}

void damaged(const uint8_t *data, size_t size)
{
	if (size < 4)
		return;
	const unsigned repeat = 1 + data[0] % 8;
	const unsigned kind = data[1] % 3;
	const size_t where = (size_t)data[2] << 8 | data[3];
	std::string unit((const char *)data + 4, size - 4), plain;
	// Up to 8 x 20000 bytes: several chunks.
	for (unsigned i = 0; i < repeat; i++)
		plain += unit;
	const std::string file = seal(plain);
	Result r = read_all_ways(file, 1 + where % 5000);
	if (!r.ok || r.plain != plain) {
		fprintf(stderr, "an intact file is not read back\n");
		abort();
	}
	const size_t chunk_full = age_chunk_size + 16;
	const size_t payload = file.find("\n--- ") + 1;
	const size_t start = file.find('\n', payload) + 1 + 16;
	std::string t = file;
	const size_t at = (where * 131) % file.size();
	if (kind == 0)
		t[at] ^= (char)(1 + data[1] / 3 % 255);
	else if (kind == 1)
		t.resize(at);
	else
		t.append((unit + "trailing bytes").substr(0, 1 + where % 40));
	r = read_all_ways(t, 1 + where % 777);
	if (r.ok) {
		fprintf(stderr, "damage (%u at %zu) not seen\n", kind, at);
		abort();
	}
	if (r.plain.size() % age_chunk_size != 0 ||
	    plain.compare(0, r.plain.size(), r.plain) != 0) {
		fprintf(stderr, "unauthenticated bytes handed out\n");
		abort();
	}
	if (r.kind == AgeReadError::truncated &&
	    (kind != 1 || (at >= start && (at - start) % chunk_full != 0))) {
		fprintf(stderr, "\"truncated\" but not cut at a chunk edge\n");
		abort();
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0) {
		std::string file((const char *)data + 1, size - 1);
		read_all_ways(file, 1 + data[0] / 2);
	} else {
		damaged(data + 1, size - 1);
	}
	return 0;
}

#ifdef RAWLOG_EXT_FUZZ_DRIVER
static const char *const fuzz_driver_tokens[] = {
	"age-encryption.org/v1\n", "-> X25519 ", "-> ", "\n", "--- ", "---",
	"AAAA", " ",
};
#define FUZZ_DRIVER_NAME "fuzz-age-read"
#include "fuzz-driver.hh"
#endif
