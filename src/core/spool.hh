// Bytes kept for later replay: in memory while small, then in an unlinked
// temporary file, so a large message costs neither memory nor a name
// anyone could open.
#ifndef RAWLOG_EXT_SPOOL_HH
#define RAWLOG_EXT_SPOOL_HH

#include <cstdint>
#include <functional>
#include <string>

namespace rawlog_ext {

class Spool {
public:
	static constexpr size_t default_memory_max = 128 * 1024;

	// tmp_dir: where the file goes once memory_max is exceeded.
	explicit Spool(std::string tmp_dir,
		       size_t memory_max = default_memory_max);
	~Spool();
	Spool(const Spool &) = delete;
	Spool &operator=(const Spool &) = delete;

	// False on failure (error() says why); the spool is then unusable.
	bool append(const unsigned char *data, size_t size);
	uint64_t size() const { return size_; }
	// Passes [offset, offset + length) to out, in pieces.
	using Output = std::function<void(const unsigned char *data,
					  size_t size)>;
	bool read(uint64_t offset, uint64_t length, const Output &out);

	bool failed() const { return !error_.empty(); }
	const std::string &error() const { return error_; }
	bool in_file() const { return fd_ != -1; }
	// Frees what was kept (memory, file); the spool is then empty.
	void discard();

private:
	bool move_to_file();
	void set_failed(const std::string &what, int error);

	std::string tmp_dir_;
	size_t memory_max_;
	std::string memory_;
	int fd_ = -1;
	uint64_t size_ = 0;
	std::string error_;
};

} // namespace rawlog_ext

#endif
