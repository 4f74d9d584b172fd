// How captured bytes are laid out in a log file.
//
// split: the bytes as they crossed the wire, with optional "<sec>.<usec> "
// timestamps at line starts and "<<<\n"/">>>\n" around each chunk -- the
// layout of Dovecot's rawlog -t/-b.
//
// transcript: one file for both directions; every record starts on its own
// line with an optional timestamp and a direction marker:
//   "I: " / "O: "  the payload is a whole line, ending in its own "\n";
//   "I+ " / "O+ "  the payload is a partial line and the "\n" that ends the
//                  record was added by the log (the line continues in the
//                  next record of that direction).
#ifndef RAWLOG_EXT_FORMAT_HH
#define RAWLOG_EXT_FORMAT_HH

#include <cstddef>
#include <string>
#include <sys/time.h>

namespace rawlog_ext {

enum class Direction { in = 0, out = 1 };

class Formatter {
public:
	Formatter(bool transcript, bool timestamps, bool boundaries)
		: transcript_(transcript), timestamps_(timestamps),
		  boundaries_(boundaries) {}

	// Appends one chunk (one read or one accepted write) to out.
	void format(std::string &out, Direction direction,
		    const unsigned char *data, size_t size,
		    const struct timeval &now);

private:
	void format_split(std::string &out, const unsigned char *data,
			  size_t size, const char *stamp, size_t stamp_len);
	void format_transcript(std::string &out, Direction direction,
			       const unsigned char *data, size_t size,
			       const char *stamp, size_t stamp_len);

	bool transcript_, timestamps_, boundaries_;
	bool at_line_start_ = true;	// split format only
};

// "<sec>.<usec> " into buf (at least 32 bytes); returns its length.
size_t format_timestamp(char *buf, const struct timeval &now);

} // namespace rawlog_ext

#endif
