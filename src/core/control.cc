#include "control.hh"
#include "login-config.hh"

#include <cctype>
#include <cstring>
#include <set>

namespace rawlog_ext {

const char control_enabled_prefix[] = "shared/rawlog-ext/enabled/";
const char control_used_prefix[] = "shared/rawlog-ext/used/";
const char control_index_key[] = "shared/rawlog-ext/index";

namespace {

// A decimal number, nothing else (no sign, no space, no overflow).
bool parse_u64(const std::string &s, uint64_t &r)
{
	if (s.empty() || s.size() > 20)
		return false;
	uint64_t v = 0;
	for (char c : s) {
		if (c < '0' || c > '9')
			return false;
		uint64_t d = (uint64_t)(c - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	r = v;
	return true;
}

int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

} // namespace

std::string control_enabled_key(const std::string &user)
{
	return control_enabled_prefix + login_user_dir(user);
}

std::string control_used_key(const std::string &user)
{
	return control_used_prefix + login_user_dir(user);
}

namespace {

// The user a login_user_dir() name stands for; false if name is not the
// one spelling login_user_dir() gives for any user.
bool decode_name(const std::string &name, std::string &user_r)
{
	std::string user;
	for (size_t i = 0; i < name.size(); i++) {
		if (name[i] != '%') {
			user += name[i];
			continue;
		}
		int hi = i + 2 < name.size() ? hex_value(name[i + 1]) : -1;
		int lo = hi >= 0 ? hex_value(name[i + 2]) : -1;
		if (lo < 0)
			return false;
		user += (char)(hi * 16 + lo);
		i += 2;
	}
	if (user.empty() || login_user_dir(user) != name)
		return false;
	user_r = user;
	return true;
}

// The valid names of an index value, in its order.
std::vector<std::string> index_tokens(const std::string &value)
{
	std::vector<std::string> names;
	size_t i = 0;
	while (i < value.size()) {
		while (i < value.size() && isspace((unsigned char)value[i]))
			i++;
		size_t start = i;
		while (i < value.size() && !isspace((unsigned char)value[i]))
			i++;
		std::string name = value.substr(start, i - start), user;
		if (!name.empty() && decode_name(name, user))
			names.push_back(name);
	}
	return names;
}

std::set<std::string> index_names(const std::string &value)
{
	std::vector<std::string> tokens = index_tokens(value);
	return std::set<std::string>(tokens.begin(), tokens.end());
}

std::string index_value(const std::set<std::string> &names)
{
	std::string value;
	for (const std::string &name : names) {
		if (!value.empty())
			value += ' ';
		value += name;
	}
	return value;
}

} // namespace

bool control_key_user(const std::string &key, std::string &user_r)
{
	for (const char *prefix : { control_enabled_prefix, control_used_prefix }) {
		if (key.compare(0, strlen(prefix), prefix) == 0)
			return decode_name(key.substr(strlen(prefix)), user_r);
	}
	return false;
}

std::vector<std::string> control_index_users(const std::string &value)
{
	std::vector<std::string> users;
	std::set<std::string> seen;
	for (const std::string &name : index_tokens(value)) {
		std::string user;
		if (seen.insert(name).second && decode_name(name, user))
			users.push_back(user);
	}
	return users;
}

std::string control_index_add(const std::string &value, const std::string &user)
{
	std::set<std::string> names = index_names(value);
	names.insert(login_user_dir(user));
	return index_value(names);
}

std::string control_index_remove(const std::string &value,
				 const std::string &user)
{
	std::set<std::string> names = index_names(value);
	names.erase(login_user_dir(user));
	return index_value(names);
}

std::string control_value(const Enablement &e)
{
	return std::to_string((long long)e.expires) + " " +
		std::to_string((unsigned long long)e.max_bytes);
}

bool control_value_parse(const std::string &value, Enablement &e_r)
{
	size_t sp = value.find(' ');
	uint64_t expires, max;
	if (sp == std::string::npos ||
	    !parse_u64(value.substr(0, sp), expires) ||
	    !parse_u64(value.substr(sp + 1), max) ||
	    expires > (uint64_t)INT64_MAX)
		return false;
	e_r.expires = (time_t)expires;
	e_r.max_bytes = max;
	return true;
}

ControlState control_state(const std::string *value, const std::string *used,
			   time_t now, uint64_t &remaining_r)
{
	remaining_r = 0;
	if (value == nullptr)
		return ControlState::off;
	Enablement e;
	uint64_t used_bytes = 0;
	if (!control_value_parse(*value, e) ||
	    (used != nullptr && !parse_u64(*used, used_bytes)))
		return ControlState::invalid;
	if (now >= e.expires)
		return ControlState::expired;
	if (e.max_bytes > 0) {
		if (used_bytes >= e.max_bytes)
			return ControlState::budget_used;
		remaining_r = e.max_bytes - used_bytes;
	}
	return ControlState::on;
}

const char *control_state_name(ControlState state)
{
	switch (state) {
	case ControlState::off:
		return "not enabled";
	case ControlState::on:
		return "enabled";
	case ControlState::expired:
		return "enablement expired";
	case ControlState::budget_used:
		return "byte budget used";
	case ControlState::invalid:
		return "invalid control entry";
	}
	return "?";
}

bool parse_duration(const std::string &value, time_t &seconds_r)
{
	size_t i = 0;
	while (i < value.size() && value[i] >= '0' && value[i] <= '9')
		i++;
	uint64_t n;
	if (!parse_u64(value.substr(0, i), n))
		return false;
	size_t u = i;
	if (u < value.size() && value[u] == ' ')
		u++;
	std::string unit = value.substr(u);
	if (u > i && unit.empty())
		return false;
	for (char &c : unit)
		c = (char)tolower((unsigned char)c);
	static const struct {
		const char *names[6];
		uint64_t seconds;
	} units[] = {
		{ { "", "s", "sec", "secs", "second", "seconds" }, 1 },
		{ { "m", "min", "mins", "minute", "minutes", nullptr }, 60 },
		{ { "h", "hour", "hours", nullptr, nullptr, nullptr }, 3600 },
		{ { "d", "day", "days", nullptr, nullptr, nullptr }, 86400 },
		{ { "w", "week", "weeks", nullptr, nullptr, nullptr }, 604800 },
	};
	const uint64_t ten_years = 10ULL * 366 * 86400;
	for (const auto &unit_def : units) {
		for (const char *name : unit_def.names) {
			if (name == nullptr || unit != name)
				continue;
			if (n == 0 || n > ten_years / unit_def.seconds)
				return false;
			seconds_r = (time_t)(n * unit_def.seconds);
			return true;
		}
	}
	return false;
}

} // namespace rawlog_ext
