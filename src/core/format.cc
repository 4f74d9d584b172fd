#include "format.hh"

#include <cstring>

namespace rawlog_ext {

size_t format_timestamp(char *buf, const struct timeval &now)
{
	// Hand-rolled: this runs for every chunk, printf is the slow part of
	// Dovecot's own timestamped rawlog.
	char digits[24];
	size_t n = 0;
	unsigned long long sec = (unsigned long long)now.tv_sec;
	do {
		digits[n++] = (char)('0' + sec % 10);
		sec /= 10;
	} while (sec > 0);
	size_t len = 0;
	while (n > 0)
		buf[len++] = digits[--n];
	buf[len++] = '.';
	unsigned long usec = (unsigned long)now.tv_usec % 1000000;
	for (int i = 5; i >= 0; i--) {
		buf[len + i] = (char)('0' + usec % 10);
		usec /= 10;
	}
	len += 6;
	buf[len++] = ' ';
	return len;
}

void Formatter::format(std::string &out, Direction direction,
		       const unsigned char *data, size_t size,
		       const struct timeval &now)
{
	if (size == 0)
		return;
	char stamp[32];
	size_t stamp_len = timestamps_ ? format_timestamp(stamp, now) : 0;

	if (boundaries_)
		out.append("<<<\n");
	if (transcript_)
		format_transcript(out, direction, data, size, stamp, stamp_len);
	else
		format_split(out, data, size, stamp, stamp_len);
	if (boundaries_)
		out.append(">>>\n");
}

void Formatter::format_split(std::string &out, const unsigned char *data,
			     size_t size, const char *stamp, size_t stamp_len)
{
	const char *p = (const char *)data, *end = p + size;
	if (stamp_len == 0) {
		out.append(p, size);
		at_line_start_ = p[size - 1] == '\n';
		return;
	}
	while (p < end) {
		if (at_line_start_)
			out.append(stamp, stamp_len);
		const char *lf = (const char *)memchr(p, '\n', end - p);
		const char *line_end = lf == nullptr ? end : lf + 1;
		out.append(p, line_end - p);
		at_line_start_ = lf != nullptr;
		p = line_end;
	}
}

void Formatter::format_transcript(std::string &out, Direction direction,
				  const unsigned char *data, size_t size,
				  const char *stamp, size_t stamp_len)
{
	const char dir_char = direction == Direction::in ? 'I' : 'O';
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *lf = (const char *)memchr(p, '\n', end - p);
		const char *line_end = lf == nullptr ? end : lf + 1;
		out.append(stamp, stamp_len);
		out += dir_char;
		out.append(lf != nullptr ? ": " : "+ ");
		out.append(p, line_end - p);
		if (lf == nullptr)
			out += '\n';
		p = line_end;
	}
}

} // namespace rawlog_ext
