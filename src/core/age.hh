// age v1 (age-encryption.org/v1) writer: X25519 recipients, header MAC,
// ChaCha20-Poly1305 STREAM in 64 KiB chunks. Only the framing is ours;
// every primitive is OpenSSL 3 EVP. The host needs only public keys.
#ifndef RAWLOG_EXT_CORE_AGE_HH
#define RAWLOG_EXT_CORE_AGE_HH

#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace rawlog_ext {

using AgeRecipient = std::array<unsigned char, 32>;

constexpr size_t age_chunk_size = 64 * 1024;

// spec: "age1..." recipients separated by white space or commas, or
// "file:/path" to a recipients file as `age -R` reads it (exactly one per
// line, nothing around it; lines starting with '#' and empty lines
// skipped). false with a message on any malformed or missing recipient,
// an unreadable file or one with none. (age-recipients.cc: no OpenSSL.)
bool age_parse_recipients(const std::string &spec,
			  std::vector<AgeRecipient> &out, std::string &error);

// One file: begin() emits the header, write() emits each chunk as soon as
// it is known not to be the last, finish() the last one (possibly full,
// or empty for empty input). A second begin() fails and changes nothing.
// The open tail (<= 64 KiB) stays in memory, wiped on destruction.
// Output is appended to out; false + error on an OpenSSL failure, after
// which the writer is unusable.
class AgeWriter {
public:
	AgeWriter() = default;
	~AgeWriter();
	AgeWriter(const AgeWriter &) = delete;
	AgeWriter &operator=(const AgeWriter &) = delete;

	bool begin(const std::vector<AgeRecipient> &recipients,
		   std::string &out, std::string &error);
	bool write(const unsigned char *data, size_t size, std::string &out,
		   std::string &error);
	bool finish(std::string &out, std::string &error);

	unsigned long long sealed_chunks() const { return counter_; }

private:
	bool seal(bool last, std::string &out, std::string &error);

	unsigned char payload_key_[32] = {};
	std::vector<unsigned char> tail_;
	unsigned long long counter_ = 0;
	bool started_ = false;
	bool finished_ = false;
	bool failed_ = false;
};

}

#endif
