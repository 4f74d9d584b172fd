// Reads rawlog_ext's own log layouts back (format.hh): split (.in/.out)
// or transcript (.log), timestamps lines/chunks/none, boundaries, the
// max-size truncation marker. Hands out the exact wire bytes per
// direction with their time. Streaming: feed() any amount, memory stays
// constant (a line is classified from its first bytes, the rest passes).
#ifndef RAWLOG_EXT_LOG_PARSE_HH
#define RAWLOG_EXT_LOG_PARSE_HH

#include "format.hh"

#include <cstdint>
#include <functional>
#include <string>

namespace rawlog_ext {

struct LogPiece {
	Direction direction;
	bool has_time;
	struct timeval time;
	const char *data;
	size_t size;
};

class LogParser {
public:
	using Emit = std::function<void(const LogPiece &)>;

	// split_direction: what a split file holds (ignored for transcript).
	// Timestamps and boundaries are recognised from the first line.
	LogParser(bool transcript, Direction split_direction, Emit emit)
		: transcript_(transcript), emit_(std::move(emit)),
		  cur_dir_(split_direction) {}

	// false on bad input: error() says why, error_offset() where.
	bool feed(const char *data, size_t size);
	bool finish();
	// Following a growing split file that has no more bytes for now: a
	// line end held back because it might be the "\n" in front of the
	// truncation marker is handed out as data. Sink::truncate_at_cap()
	// writes the marker together with its leading "\n" in one write(),
	// so a lone "\n" at the current end of the file is never the
	// marker's. Only at a line start with nothing else pending; a held
	// ">>>\n" (perhaps a chunk's end) stays. No effect on a transcript.
	void release_held();

	const std::string &error() const { return error_; }
	uint64_t error_offset() const { return error_offset_; }
	bool truncated() const { return truncated_; }	// max-size marker seen
	bool has_timestamps() const { return stamps_; }

private:
	static constexpr size_t head_max = 128;

	bool classify_head(bool complete);
	bool replay_marker_as_data();
	void data(const char *p, size_t n);
	void flush_held();
	void line_end_data();
	bool bad(const std::string &why, uint64_t offset);

	bool transcript_;
	Emit emit_;
	Direction cur_dir_;
	bool first_line_ = true;
	bool stamps_ = false;
	bool stamps_known_ = false;
	bool boundaries_ = false;
	bool in_chunk_ = false;
	bool truncated_ = false;
	bool no_marker_ = false;
	std::string marker_;		// a last line that may be the marker
	uint64_t marker_offset_ = 0;
	bool at_line_start_ = true;
	bool drop_final_lf_ = false;	// transcript "+" record
	bool have_time_ = false;
	struct timeval time_ = { 0, 0 };
	std::string head_;		// start of the current file line
	uint64_t head_offset_ = 0;
	std::string tail_;		// last line bytes not yet emitted (<= 4)
	std::string held_;		// split: a line end that may be a marker's
	uint64_t offset_ = 0;
	std::string error_;
	uint64_t error_offset_ = 0;
	bool failed_ = false;
};

// Whether s (size n) starts with "<sec>.<usec> "; its length or 0.
size_t parse_stamp(const char *s, size_t n, struct timeval &tv_r);

extern const char truncation_marker_prefix[];

} // namespace rawlog_ext

#endif
