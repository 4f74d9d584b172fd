#include "view/sessions.hh"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace rawlog_ext {

namespace {

bool ends_with(const std::string &s, const char *suffix)
{
	size_t n = strlen(suffix);
	return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

bool login_service(const std::string &service)
{
	return ends_with(service, "-login") || ends_with(service, "-login-proxy");
}

} // namespace

std::string leg_of(const std::string &service)
{
	if (ends_with(service, "-login"))
		return "pre-login";
	if (ends_with(service, "-relay"))
		return "relay";
	if (ends_with(service, "-proxy"))
		return "backend";
	return "session";
}

std::string user_from_login_dir(const std::string &component)
{
	std::string user;
	for (size_t i = 0; i < component.size(); i++) {
		int hi, lo;
		auto hex = [](char c) {
			return c >= '0' && c <= '9' ? c - '0' :
				c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		};
		if (component[i] == '%' && i + 2 < component.size() &&
		    (hi = hex(component[i + 1])) >= 0 &&
		    (lo = hex(component[i + 2])) >= 0) {
			user += (char)(hi << 4 | lo);
			i += 2;
		} else {
			user += component[i];
		}
	}
	return user;
}

std::string utc_iso(time_t t)
{
	struct tm tm;
	char b[32];
	if (gmtime_r(&t, &tm) == nullptr ||
	    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return "-";
	return b;
}

std::string user_of(const LogFile &file)
{
	if (file.dir_name.empty())
		return "";
	return login_service(file.name.parts.service) ?
		user_from_login_dir(file.dir_name) : file.dir_name;
}

bool file_before(const LogFile &a, const LogFile &b)
{
	if (a.name.parts.time != b.name.parts.time)
		return a.name.parts.time < b.name.parts.time;
	auto rank = [](const LogFile &f) {
		const std::string leg = leg_of(f.name.parts.service);
		return leg == "pre-login" ? 0 : leg == "session" ? 1 : 2;
	};
	if (rank(a) != rank(b))
		return rank(a) < rank(b);
	return a.path < b.path;
}

std::vector<SessionEntry> group_sessions(std::vector<LogFile> files)
{
	// By time, then session, then file_before(): each session is then met first
	// at its start, in the order wanted (start, then id). Indices are
	// sorted, not the files (100,000s of them, each a few strings).
	std::vector<uint32_t> order(files.size());
	for (size_t i = 0; i < order.size(); i++)
		order[i] = (uint32_t)i;
	std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
		const LogFile &a = files[x], &b = files[y];
		if (a.name.parts.time != b.name.parts.time)
			return a.name.parts.time < b.name.parts.time;
		int c = a.name.parts.session.compare(b.name.parts.session);
		if (c != 0)
			return c < 0;
		return file_before(a, b);
	});
	std::unordered_map<std::string, size_t> index;
	index.reserve(files.size());
	std::vector<SessionEntry> sessions;
	std::vector<bool> login_user;
	for (uint32_t i : order) {
		LogFile &f = files[i];
		auto it = index.find(f.name.parts.session);
		if (it == index.end()) {
			it = index.emplace(f.name.parts.session,
					   sessions.size()).first;
			sessions.emplace_back();
			login_user.push_back(false);
			sessions.back().id = f.name.parts.session;
			sessions.back().start = f.name.parts.time;
		}
		SessionEntry &s = sessions[it->second];
		const std::string user = user_of(f);
		const bool from_login = login_service(f.name.parts.service);
		if (!user.empty() && (s.user.empty() ||
				      (from_login && !login_user[it->second]))) {
			s.user = user;
			login_user[it->second] = from_login;
		}
		if (std::find(s.services.begin(), s.services.end(),
			      f.name.parts.service) == s.services.end())
			s.services.push_back(f.name.parts.service);
		if (!f.name.parts.ip.empty() &&
		    std::find(s.ips.begin(), s.ips.end(), f.name.parts.ip) ==
		    s.ips.end())
			s.ips.push_back(f.name.parts.ip);
		s.bytes += f.size;
		s.last_mtime = std::max(s.last_mtime, f.mtime);
		s.files.push_back(std::move(f));
	}
	return sessions;
}

} // namespace rawlog_ext
