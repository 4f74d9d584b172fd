// rawlog_ext_login's configuration. Login processes get no plugin {}
// settings, so the module reads environment variables that the admin
// passes with Dovecot's import_environment: RAWLOG_EXT_LOGIN_<NAME> for
// each setting rawlog_ext_<name> (RAWLOG_EXT_LOGIN_DIR, ..._FORMAT, ...),
// plus the login-only ones below.
#ifndef RAWLOG_EXT_LOGIN_CONFIG_HH
#define RAWLOG_EXT_LOGIN_CONFIG_HH

#include "settings.hh"

#include <string>
#include <vector>

namespace rawlog_ext {

enum class LoginSelect {
	all,	// every session (unauthenticated ones too)
	passdb,	// users whose passdb reply has rawlog_ext=yes, or listed
};

struct LoginConfig {
	Settings settings;		// settings.dir: the base directory
	LoginSelect select = LoginSelect::passdb;
	std::vector<std::string> users;	// RAWLOG_EXT_LOGIN_USERS
	// Bytes kept per session until its user is known.
	uint64_t hold_max = 256 * 1024;
};

// "rawlog_ext_dir" -> "RAWLOG_EXT_LOGIN_DIR".
std::string login_env_name(const std::string &setting);

// Fills config from getenv (called with the environment variable names).
// On an invalid value returns false with error_r naming the variable.
bool login_config_parse(const Getenv &getenv, LoginConfig &config,
			std::string &error_r);

// Whether an authenticated session of user is logged. passdb_fields are
// the passdb reply's "key=value" fields: rawlog_ext=yes selects the user,
// rawlog_ext=no deselects it even when listed.
bool login_user_selected(const LoginConfig &config, const std::string &user,
			 const std::vector<std::string> &passdb_fields);

// The per-user subdirectory name: one safe path component.
std::string login_user_dir(const std::string &user);

} // namespace rawlog_ext

#endif
