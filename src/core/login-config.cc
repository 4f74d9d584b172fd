#include "login-config.hh"
#include "naming.hh"

#include <cctype>

namespace rawlog_ext {

std::string login_env_name(const std::string &setting)
{
	const std::string prefix = "rawlog_ext_";
	std::string rest = setting.compare(0, prefix.size(), prefix) == 0 ?
		setting.substr(prefix.size()) : setting;
	std::string name = "RAWLOG_EXT_LOGIN_";
	for (char c : rest)
		name += (char)toupper((unsigned char)c);
	return name;
}

bool login_config_parse(const Getenv &getenv, LoginConfig &config,
			std::string &error_r)
{
	config = LoginConfig();
	if (!settings_parse([&](const char *name) {
			return getenv(login_env_name(name).c_str());
		}, config.settings, error_r)) {
		// Name the variable the admin set, not the plugin setting.
		size_t start = error_r.find("rawlog_ext_");
		size_t end = error_r.find('=', start);
		if (start != std::string::npos && end != std::string::npos) {
			error_r.replace(start, end - start, login_env_name(
				error_r.substr(start, end - start)));
		}
		return false;
	}

	const char *select = getenv("RAWLOG_EXT_LOGIN_SELECT");
	if (select != nullptr && select[0] != '\0') {
		std::string value = select;
		if (value == "all") {
			config.select = LoginSelect::all;
		} else if (value == "passdb") {
			config.select = LoginSelect::passdb;
		} else {
			error_r = "Invalid setting RAWLOG_EXT_LOGIN_SELECT=" +
				value + ": expected all or passdb";
			return false;
		}
	}

	const char *users = getenv("RAWLOG_EXT_LOGIN_USERS");
	if (users != nullptr) {
		// import_environment values cannot hold spaces: commas.
		std::string list = users, user;
		for (size_t i = 0; i <= list.size(); i++) {
			if (i == list.size() || list[i] == ',') {
				if (!user.empty())
					config.users.push_back(user);
				user.clear();
			} else {
				user += list[i];
			}
		}
	}

	const char *hold = getenv("RAWLOG_EXT_LOGIN_HOLD");
	if (hold != nullptr && hold[0] != '\0' &&
	    !parse_size(hold, config.hold_max)) {
		error_r = std::string("Invalid setting RAWLOG_EXT_LOGIN_HOLD=") +
			hold + ": expected a size such as 64k";
		return false;
	}
	return true;
}

bool login_user_selected(const LoginConfig &config, const std::string &user,
			 const std::vector<std::string> &passdb_fields)
{
	for (const std::string &field : passdb_fields) {
		const std::string key = "rawlog_ext=";
		if (field.compare(0, key.size(), key) != 0)
			continue;
		bool value;
		if (parse_bool(field.substr(key.size()), value))
			return value;
	}
	if (config.select == LoginSelect::all)
		return true;
	for (const std::string &listed : config.users) {
		if (listed == user)
			return true;
	}
	return false;
}

std::string login_user_dir(const std::string &user)
{
	return sanitize_name_field(user);
}

} // namespace rawlog_ext
