#include "naming.hh"

namespace rawlog_ext {

std::string sanitize_name_field(const std::string &value)
{
	std::string result;
	result.reserve(value.size());
	for (unsigned char c : value) {
		bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '.' || c == '+' ||
			c == '=' || c == '-';
		result += keep ? (char)c : '-';
	}
	// "." and ".." alone would be path components of their own.
	if (result.empty() || result == "." || result == "..")
		result = "-";
	return result;
}

std::string log_base_name(const NameParts &parts, unsigned int n)
{
	struct tm tm;
	char stamp[32];
	if (gmtime_r(&parts.time, &tm) == nullptr ||
	    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
		stamp[0] = '\0';

	std::string name = stamp;
	name += '_';
	name += sanitize_name_field(parts.service);
	name += '_';
	name += sanitize_name_field(parts.session);
	name += '_';
	name += std::to_string((long)parts.pid);
	name += '_';
	name += sanitize_name_field(parts.hostname);
	if (!parts.peer.empty()) {
		name += '_';
		name += sanitize_name_field(parts.peer);
	}
	if (!parts.ip.empty()) {
		name += '_';
		name += sanitize_name_field(parts.ip);
	}
	if (n > 0) {
		name += '_';
		name += std::to_string(n);
	}
	return name;
}

bool check_dir_path(const std::string &path, std::string &error_r)
{
	if (path.empty() || path[0] != '/') {
		error_r = "rawlog_ext_dir=" + path + " is not an absolute path";
		return false;
	}
	size_t start = 0;
	while (start <= path.size()) {
		size_t end = path.find('/', start);
		if (end == std::string::npos)
			end = path.size();
		std::string component = path.substr(start, end - start);
		if (component == "." || component == "..") {
			error_r = "rawlog_ext_dir=" + path +
				" contains a '" + component +
				"' component (a variable value such as the "
				"username may be trying to leave the log directory)";
			return false;
		}
		start = end + 1;
	}
	return true;
}

} // namespace rawlog_ext
