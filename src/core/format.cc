#include "format.hh"

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

} // namespace rawlog_ext
