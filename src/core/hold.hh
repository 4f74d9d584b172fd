// Bytes kept for a session whose log has no file yet (the login process
// does not know the user at first), bounded by what they cost in memory,
// not only by their number: one unauthenticated client sending a byte per
// TCP segment must not make each byte cost a record of its own plus heap.
//
// Pieces go into fixed-size blocks as records: a header (direction, and
// the time as a delta to the previous record's) and the data. A piece
// that does not fit in the rest of a block is continued in the next one.
// A piece is appended to the record before it when replaying the two as
// one write logs the very same bytes (see Coalescing). Every allocation is
// counted with its heap and pointer overhead: cost() <= the limit always.
#ifndef RAWLOG_EXT_HOLD_HH
#define RAWLOG_EXT_HOLD_HH

#include "format.hh"
#include "settings.hh"

#include <cstdint>
#include <functional>
#include <memory>
#include <sys/time.h>
#include <vector>

namespace rawlog_ext {

class HeldData {
public:
	// Counted per allocation: glibc's chunk header and alignment.
	static constexpr size_t alloc_overhead = 16;
	static constexpr size_t max_block = 4096;

	// Keeps at most max bytes, bookkeeping included; the format (of the
	// sink the data will go to) says which pieces may be merged.
	HeldData(uint64_t max, const Settings &format);
	HeldData(const HeldData &) = delete;
	HeldData &operator=(const HeldData &) = delete;

	// False if the piece did not fit (nothing of it is kept then).
	bool add(Direction direction, const unsigned char *data, size_t size,
		 const struct timeval &time);
	// Hands every piece, in order, to write (merged pieces as one); the
	// blocks are freed as they are replayed. Leaves the object empty.
	void replay(const std::function<void(Direction, const unsigned char *,
					     size_t, const struct timeval &)>
		    &write);
	// Memory taken: blocks, their pointers' array, heap overhead.
	size_t cost() const { return cost_; }
	uint64_t bytes() const { return bytes_; }

private:
	enum Flags : unsigned char {
		flag_out = 1,		// else Direction::in
		flag_continued = 2,	// more of the previous record
	};
	// Header: flags, 2 bytes length, zigzag varint time delta (usec);
	// a continued record has no time.
	static constexpr size_t max_header = 1 + 2 + 10;

	bool mergeable(Direction direction, const unsigned char *data,
		       size_t size, const struct timeval &time) const;
	uint64_t cost_for(size_t count, size_t block_size) const;
	size_t room() const;
	bool new_block();
	void put_header(unsigned char flags, const struct timeval *time);

	uint64_t max_;
	// Merge any same-direction piece (no stamps, no markers), or one
	// that starts no line (line stamps only at line starts).
	// Merge a piece of the same time (line stamps only).
	bool merge_any_, merge_in_line_, merge_same_time_;
	size_t block_size_;
	std::vector<std::unique_ptr<unsigned char[]>> blocks_;
	size_t used_ = 0;		// in the last block
	size_t cost_ = 0;
	uint64_t bytes_ = 0;
	// The last record, to append to: where its length is, its length.
	bool have_last_ = false;
	Direction last_direction_ = Direction::in;
	struct timeval last_time_ = { 0, 0 };
	unsigned char *last_length_ = nullptr;
	size_t last_size_ = 0;
	bool last_lf_ = false;		// the last byte held is '\n'
};

} // namespace rawlog_ext

#endif
