// How captured bytes are laid out in a log file.
//
// split: the bytes as they crossed the wire, with optional "<sec>.<usec> "
// timestamps at line starts and "<<<\n"/">>>\n" around each chunk -- the
// layout of Dovecot's rawlog -t/-b.
//
// Timestamps::lines stamps every line start (as rawlog -t). Timestamps::
// chunks stamps the first line that starts in each chunk -- the lines after
// it in that chunk would carry the very same stamp -- and, in split files,
// every file line that starts with a digit: a line starts with a stamp
// exactly when one was put there, so removing them gives the bytes back
// (without boundaries; their markers can be mimicked by data, as with
// rawlog -b), and data can never pass for a stamp.
//
// transcript: one file for both directions; every record starts on its own
// line with an optional timestamp and a direction marker:
//   "I: " / "O: "  the payload is a whole line, ending in its own "\n";
//   "I+ " / "O+ "  the payload is a partial line and the "\n" that ends the
//                  record was added by the log (the line continues in the
//                  next record of that direction).
//
// The formatter never copies the data itself: it hands out pieces (the
// caller's bytes, stamps, markers) to an emitter, which can write them with
// writev() or count them.
#ifndef RAWLOG_EXT_FORMAT_HH
#define RAWLOG_EXT_FORMAT_HH

#include <cstddef>
#include <cstring>
#include <string>
#include <sys/time.h>

namespace rawlog_ext {

enum class Direction { in = 0, out = 1 };

enum class Timestamps { none, lines, chunks };

// "<sec>.<usec> " into buf (at least 32 bytes); returns its length.
size_t format_timestamp(char *buf, const struct timeval &now);

class Formatter {
public:
	static constexpr size_t min_copied_piece = 32;

	Formatter(bool transcript, Timestamps timestamps, bool boundaries)
		: transcript_(transcript), timestamps_(timestamps),
		  boundaries_(boundaries) {}

	// Emits one chunk (one read or one accepted write) as pieces:
	// emit(const char *data, size_t size). Pieces may point into data;
	// all others (stamps, markers) are shorter than min_copied_piece and
	// live on format()'s stack: the emitter copies those at once.
	template <typename Emit>
	void format(Emit &emit, Direction direction, const unsigned char *data,
		    size_t size, const struct timeval &now);

	// The same, appended to a string (tests, small markers).
	void format(std::string &out, Direction direction,
		    const unsigned char *data, size_t size,
		    const struct timeval &now)
	{
		auto append = [&out](const char *p, size_t n) { out.append(p, n); };
		format(append, direction, data, size, now);
	}

private:
	bool transcript_;
	Timestamps timestamps_;
	bool boundaries_;
	bool at_line_start_ = true;	// split format only
};

// A line starting here could be taken for a stamped one (timestamps=chunks
// then stamps it).
inline bool could_pass_for_stamp(const char *line)
{
	return *line >= '0' && *line <= '9';
}

template <typename Emit>
void Formatter::format(Emit &emit, Direction direction,
		       const unsigned char *data, size_t size,
		       const struct timeval &now)
{
	if (size == 0)
		return;
	char stamp[32];
	const size_t stamp_len = timestamps_ == Timestamps::none ? 0 :
		format_timestamp(stamp, now);
	const char *p = (const char *)data, *end = p + size;

	if (boundaries_)
		emit("<<<\n", 4);
	if (!transcript_ && timestamps_ == Timestamps::chunks) {
		// Whole runs of lines go out as one piece, not line by line.
		const char *run = p;
		if (!at_line_start_) {
			// After "<<<\n" a continued line starts a file line too.
			if (boundaries_ && could_pass_for_stamp(p))
				emit(stamp, stamp_len);
			const char *lf = (const char *)memchr(p, '\n', size);
			p = lf == nullptr ? end : lf + 1;
		}
		bool first = true;
		while (p < end) {
			if (first || could_pass_for_stamp(p)) {
				if (p > run)
					emit(run, p - run);
				emit(stamp, stamp_len);
				run = p;
				first = false;
			}
			const char *lf = (const char *)memchr(p, '\n', end - p);
			p = lf == nullptr ? end : lf + 1;
		}
		if (end > run)
			emit(run, end - run);
		at_line_start_ = end[-1] == '\n';
	} else if (!transcript_ && stamp_len == 0) {
		emit(p, size);
		at_line_start_ = p[size - 1] == '\n';
	} else {
		const char dir_char = direction == Direction::in ? 'I' : 'O';
		bool stamp_due = stamp_len > 0;
		while (p < end) {
			const char *lf = (const char *)memchr(p, '\n', end - p);
			const char *line_end = lf == nullptr ? end : lf + 1;
			if ((transcript_ || at_line_start_) && stamp_due) {
				emit(stamp, stamp_len);
				stamp_due = timestamps_ == Timestamps::lines;
			}
			if (transcript_) {
				emit(&dir_char, 1);
				emit(lf != nullptr ? ": " : "+ ", 2);
			}
			emit(p, line_end - p);
			if (transcript_ && lf == nullptr)
				emit("\n", 1);
			at_line_start_ = lf != nullptr;
			p = line_end;
		}
	}
	if (boundaries_)
		emit(">>>\n", 4);
}

} // namespace rawlog_ext

#endif
