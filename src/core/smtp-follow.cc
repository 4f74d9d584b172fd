#include "smtp-follow.hh"

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rawlog_ext {

namespace {

bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

unsigned char ascii_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
}

} // namespace

SmtpReplyLine smtp_reply_line(const unsigned char *line, size_t size)
{
	SmtpReplyLine reply;
	if (size < 3 || !is_digit(line[0]) || !is_digit(line[1]) ||
	    !is_digit(line[2]))
		return reply;
	reply.code = (unsigned int)(line[0] - '0') * 100 +
		(unsigned int)(line[1] - '0') * 10 +
		(unsigned int)(line[2] - '0');
	reply.more = size > 3 && line[3] == '-';
	return reply;
}

namespace {

// The first i in [from, size) with data[i] == '.' and data[i - 1] == '\n'
// (from >= 1), else size. Only a line that starts with a dot can end the
// data, and most lines do not: this is the idle LMTP connection's per-byte
// work, so it looks at 16 bytes at a time where SSE2 is there (every
// x86-64), instead of a memchr() per line.
size_t find_dot_line(const unsigned char *data, size_t from, size_t size)
{
	size_t i = from;
#if defined(__SSE2__)
	const __m128i dot = _mm_set1_epi8('.');
	const __m128i lf = _mm_set1_epi8('\n');
	for (; i + 16 <= size; i += 16) {
		__m128i here = _mm_loadu_si128((const __m128i *)(data + i));
		__m128i before = _mm_loadu_si128((const __m128i *)(data + i - 1));
		int mask = _mm_movemask_epi8(_mm_and_si128(
			_mm_cmpeq_epi8(here, dot), _mm_cmpeq_epi8(before, lf)));
		if (mask != 0)
			return i + (size_t)__builtin_ctz((unsigned int)mask);
	}
#endif
	// The rest: each LF that has a byte after it.
	for (size_t j = i - 1; j + 1 < size; j++) {
		const void *lf = memchr(data + j, '\n', size - 1 - j);
		if (lf == nullptr)
			return size;
		j = (size_t)((const unsigned char *)lf - data);
		if (data[j + 1] == '.')
			return j + 1;
	}
	return size;
}

} // namespace

size_t SmtpDataEnd::scan(const unsigned char *data, size_t size,
			 bool &ended_r)
{
	ended_r = false;
	size_t i = 0;
	while (i < size) {
		unsigned char c = data[i];
		switch (state_) {
		case State::line_start:
			state_ = c == '.' ? State::dot :
				c == '\n' ? State::line_start : State::mid_line;
			i++;
			break;
		case State::mid_line: {
			// Most of a message: on to the next line that starts
			// with a dot (its predecessor in this piece ends a
			// line, so i >= 1 here).
			if (i == 0) {
				if (c == '\n')
					state_ = State::line_start;
				i++;
				break;
			}
			size_t next = find_dot_line(data, i, size);
			if (next == size) {
				state_ = data[size - 1] == '\n' ?
					State::line_start : State::mid_line;
				return size;
			}
			state_ = State::dot;
			i = next + 1;
			break;
		}
		case State::dot:
		case State::dot_cr:
			if (c == '\n') {
				state_ = State::line_start;
				ended_r = true;
				return i + 1;
			}
			state_ = c == '\r' && state_ == State::dot ?
				State::dot_cr : State::mid_line;
			i++;
			break;
		}
	}
	return size;
}

bool smtp_bdat_chunk(const unsigned char *params, size_t size,
		     uint64_t &size_r, bool &last_r)
{
	// The parser trims trailing white space and refuses a second space
	// after the command name.
	while (size > 0 && (params[size - 1] == ' ' || params[size - 1] == '\t'))
		size--;
	if (size == 0 || params[0] == ' ')
		return false;
	size_t pos = 0;
	uint64_t chunk = 0;
	// More than 18 digits: past any message size limit, where lib-smtp
	// refuses the data too (smtp_command_parse_data_with_size()).
	while (pos < size && params[pos] != ' ') {
		if (!is_digit(params[pos]) || pos >= 18)
			return false;
		chunk = chunk * 10 + (uint64_t)(params[pos] - '0');
		pos++;
	}
	static const char last[] = " LAST";
	bool is_last = size - pos == sizeof(last) - 1;
	for (size_t i = 0; is_last && i < sizeof(last) - 1; i++)
		is_last = ascii_upper(params[pos + i]) == (unsigned char)last[i];
	size_r = chunk;
	last_r = is_last;
	return true;
}

} // namespace rawlog_ext
