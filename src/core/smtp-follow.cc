#include "smtp-follow.hh"

#include <cstring>

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

size_t SmtpDataEnd::scan(const unsigned char *data, size_t size,
			 bool &ended_r)
{
	ended_r = false;
	for (size_t i = 0; i < size; i++) {
		unsigned char c = data[i];
		switch (state_) {
		case State::line_start:
			state_ = c == '.' ? State::dot :
				c == '\n' ? State::line_start : State::mid_line;
			break;
		case State::mid_line: {
			// Most of a message: skip to the line's end at once.
			const void *lf = memchr(data + i, '\n', size - i);
			if (lf == nullptr)
				return size;
			i = (size_t)((const unsigned char *)lf - data);
			state_ = State::line_start;
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
