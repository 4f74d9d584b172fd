#include "log-name.hh"

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

namespace rawlog_ext {

namespace {

bool ends_with(const std::string &s, const char *suffix)
{
	size_t n = strlen(suffix);
	return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

bool all_digits(const std::string &s)
{
	return !s.empty() &&
		s.find_first_not_of("0123456789") == std::string::npos;
}

// What sanitize_name_field() can give: a field read back must be one.
bool name_field(const std::string &s)
{
	// As sanitize_name_field() keeps bytes (without building a copy:
	// this runs for every field of every file of a tree).
	if (s.empty() || s == "." || s == "..")
		return false;
	for (unsigned char c : s)
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '+' ||
		      c == '=' || c == '-'))
			return false;
	return true;
}

bool leg_service(const std::string &service)
{
	return ends_with(service, "-proxy") || ends_with(service, "-relay");
}

// Digits at text[pos..pos+n) as a number, or -1.
int number(const std::string &text, size_t pos, size_t n)
{
	if (pos + n > text.size())
		return -1;
	int v = 0;
	for (size_t i = pos; i < pos + n; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -1;
		v = v * 10 + (text[i] - '0');
	}
	return v;
}

bool make_time(int y, int mo, int d, int h, int mi, int s, time_t &r)
{
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || s > 60)
		return false;
	struct tm tm = {};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	r = timegm(&tm);
	// 31 February would become 3 March: refused.
	struct tm back;
	return r != (time_t)-1 && gmtime_r(&r, &back) != nullptr &&
		back.tm_mday == d && back.tm_mon == mo - 1;
}

} // namespace

bool parse_log_name(const std::string &file_name, LogName &r)
{
	std::string base = file_name;
	r = LogName();
	if (ends_with(base, ".age")) {
		r.sealed = true;
		base.resize(base.size() - 4);
	}
	for (const char *ext : { "in", "out", "log" }) {
		std::string dot = std::string(".") + ext;
		if (ends_with(base, dot.c_str())) {
			r.ext = ext;
			base.resize(base.size() - dot.size());
			break;
		}
	}
	if (r.ext.empty())
		return false;
	r.stem = base;

	std::vector<std::string> f;
	size_t start = 0;
	for (;;) {
		size_t end = base.find('_', start);
		f.push_back(base.substr(start, end == std::string::npos ?
					std::string::npos : end - start));
		if (end == std::string::npos)
			break;
		start = end + 1;
	}
	if (f.size() < 5 || f.size() > 8 || f[0].size() != 16 ||
	    f[0][8] != 'T' || f[0][15] != 'Z')
		return false;
	const std::string &s = f[0];
	if (!make_time(number(s, 0, 4), number(s, 4, 2), number(s, 6, 2),
		       number(s, 9, 2), number(s, 11, 2), number(s, 13, 2),
		       r.parts.time))
		return false;
	for (size_t i = 1; i < f.size(); i++)
		if (!name_field(f[i]))
			return false;
	if (!all_digits(f[3]) || f[3].size() > 10)
		return false;
	r.parts.service = f[1];
	r.parts.session = f[2];
	r.parts.pid = (pid_t)strtol(f[3].c_str(), nullptr, 10);
	r.parts.hostname = f[4];
	std::vector<std::string> rest(f.begin() + 5, f.end());
	// The counter is digits only; a peer ("host-port") and an address
	// (IPv4 dots, IPv6 dashes) never are.
	if (!rest.empty() && all_digits(rest.back())) {
		if (rest.back().size() > 9 || rest.back()[0] == '0')
			return false;
		r.n = (unsigned int)strtoul(rest.back().c_str(), nullptr, 10);
		rest.pop_back();
	}
	size_t i = 0;
	if (leg_service(r.parts.service)) {
		if (rest.empty())
			return false;
		r.parts.peer = rest[i++];
	}
	if (i < rest.size())
		r.parts.ip = rest[i++];
	return i == rest.size();
}

bool parse_utc_time(const std::string &t, time_t &r)
{
	// YYYY-MM-DD, then optionally THH:MM, then optionally :SS.
	if (t.size() != 10 && t.size() != 16 && t.size() != 19)
		return false;
	if (t[4] != '-' || t[7] != '-' ||
	    (t.size() > 10 && (t[10] != 'T' || t[13] != ':')) ||
	    (t.size() > 16 && t[16] != ':'))
		return false;
	int h = 0, mi = 0, s = 0;
	if (t.size() > 10) {
		h = number(t, 11, 2);
		mi = number(t, 14, 2);
		if (h < 0 || mi < 0)
			return false;
	}
	if (t.size() > 16 && (s = number(t, 17, 2)) < 0)
		return false;
	return make_time(number(t, 0, 4), number(t, 5, 2), number(t, 8, 2),
			 h, mi, s, r);
}

} // namespace rawlog_ext
