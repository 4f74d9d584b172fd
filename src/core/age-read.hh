// age v1 (age-encryption.org/v1) reader for X25519 identities: the
// header (stanzas, MAC), then the ChaCha20-Poly1305 STREAM, fed in any
// pieces with constant memory; plaintext is handed out one authenticated
// chunk at a time. Every primitive is OpenSSL 3 EVP. A failure says
// where (file offset, chunk) and whether the file was altered or only
// lacks its final chunk (a writer that died).
#ifndef RAWLOG_EXT_CORE_AGE_READ_HH
#define RAWLOG_EXT_CORE_AGE_READ_HH

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace rawlog_ext {

// X25519 secret keys, wiped when destroyed or cleared.
class AgeIdentities {
public:
	AgeIdentities() = default;
	~AgeIdentities() { clear(); }
	AgeIdentities(const AgeIdentities &) = delete;
	AgeIdentities &operator=(const AgeIdentities &) = delete;

	// Adds the identities of an identity file's text as `age -i` reads
	// it: one AGE-SECRET-KEY-1... per line (upper case, nothing around
	// it, CRLF allowed), lines starting with '#' and empty lines skipped;
	// at least one. false (nothing added) with a message naming the line,
	// never its content.
	bool add_text(const std::string &text, const std::string &name,
		      std::string &error);
	bool add_file(const std::string &path, std::string &error);

	void clear();
	size_t size() const { return keys_.size(); }
	const std::array<unsigned char, 32> &key(size_t i) const
	{
		return keys_[i];
	}

private:
	std::vector<std::array<unsigned char, 32>> keys_;
};

enum class AgeReadError {
	none,
	malformed,	// not an age v1 header (or one cut short)
	no_identity,	// no identity opens a stanza (other keys, or altered)
	header_mac,	// the header's MAC fails: altered
	chunk,		// a chunk fails authentication: altered (or cut inside)
	after_last,	// data after the last chunk: altered
	empty_last,	// an empty last chunk after others: altered
	truncated,	// ends after a chunk that is not the last
	internal,	// an OpenSSL call failed
};

class AgeReader {
public:
	// Each authenticated chunk's plaintext (empty chunks are not given).
	using Emit = std::function<void(const unsigned char *, size_t)>;

	// ids must outlive the reader.
	AgeReader(const AgeIdentities &ids, Emit emit)
		: ids_(ids), emit_(std::move(emit)) {}
	~AgeReader();
	AgeReader(const AgeReader &) = delete;
	AgeReader &operator=(const AgeReader &) = delete;

	// false once the input is refused: error() etc. say why. finish()
	// at the end of the file; true only for a complete, intact file.
	bool feed(const void *data, size_t size);
	bool finish();

	AgeReadError kind() const { return kind_; }
	// Altered (or not age at all), as opposed to truncated or no key.
	bool altered() const;
	// A sentence without key material (nor the offset), e.g. "chunk 3
	// fails authentication: altered".
	const std::string &error() const { return error_; }
	// File offset of the failing line or chunk; for truncated, the
	// file's size.
	uint64_t error_offset() const { return error_offset_; }
	// 1 = the first chunk; 0: in the header. For truncated, the last
	// chunk the file holds.
	uint64_t error_chunk() const { return error_chunk_; }
	// Chunks authenticated and handed out so far.
	uint64_t chunks() const { return counter_; }

private:
	bool parse_header();
	bool unwrap(const std::vector<std::string> &args,
		    const std::vector<unsigned char> &body, bool &opened);
	bool open_chunk(const unsigned char *in, size_t n, bool last,
			std::vector<unsigned char> &plain);
	bool open_full_chunk();
	bool refuse(AgeReadError kind, const std::string &why, uint64_t offset,
		  uint64_t chunk);

	const AgeIdentities &ids_;
	Emit emit_;
	std::string header_;			// until its MAC line ends
	bool header_done_ = false;
	unsigned char file_key_[16] = {};	// until the nonce is read
	unsigned char nonce_[16] = {};
	size_t nonce_have_ = 0;
	unsigned char payload_key_[32] = {};
	std::vector<unsigned char> buf_;	// <= one chunk + 1 byte
	std::vector<unsigned char> plain_;
	uint64_t offset_ = 0;			// file offset of buf_[0]
	uint64_t counter_ = 0;
	bool failed_ = false;
	bool finished_ = false;
	AgeReadError kind_ = AgeReadError::none;
	std::string error_;
	uint64_t error_offset_ = 0;
	uint64_t error_chunk_ = 0;
};

} // namespace rawlog_ext

#endif
