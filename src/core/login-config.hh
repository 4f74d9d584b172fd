// rawlog_ext_login's configuration. Login processes get no plugin {}
// settings on 2.3, so the module reads environment variables that the
// admin passes with Dovecot's import_environment: RAWLOG_EXT_LOGIN_<NAME>
// for each setting rawlog_ext_<name> (RAWLOG_EXT_LOGIN_DIR, ..._FORMAT,
// ...), plus the login-only ones below. On 2.4 the same names, lower-case
// (rawlog_ext_login_dir, ...), can also be Dovecot settings (with the
// login settings module installed); getenv then gives those first.
#ifndef RAWLOG_EXT_LOGIN_CONFIG_HH
#define RAWLOG_EXT_LOGIN_CONFIG_HH

#include "settings.hh"

#include <string>
#include <sys/stat.h>
#include <vector>

namespace rawlog_ext {

enum class LoginSelect {
	all,	// every session (unauthenticated ones too)
	passdb,	// users whose passdb reply has rawlog_ext=yes, or listed
};

// An address range: 192.0.2.0/24, 2001:db8::/32, or one address.
struct Network {
	int family;			// AF_INET or AF_INET6
	unsigned char addr[16];
	unsigned int bits;
};
bool parse_network(const std::string &text, Network &network_r);
// ip: an address as text (IPv4, IPv6, or IPv4-mapped IPv6).
bool network_contains(const Network &network, const std::string &ip);

struct LoginConfig {
	Settings settings;		// settings.dir: the base directory
	LoginSelect select = LoginSelect::passdb;
	std::vector<std::string> users;	// RAWLOG_EXT_LOGIN_USERS
	std::vector<Network> networks;	// RAWLOG_EXT_LOGIN_NETWORKS
	// Bytes kept per session until its user is known.
	uint64_t hold_max = 256 * 1024;
	// The control dict (doveadm rawlog enable) through Dovecot's dict
	// proxy: RAWLOG_EXT_LOGIN_CONTROL_SOCKET, a dict service listener
	// (empty = none; relative: to the login chroot, or without one to
	// $base_dir/login), and RAWLOG_EXT_LOGIN_CONTROL_NAME, the dict's
	// name in the dict service's configuration.
	std::string control_socket;
	std::string control_name = "rawlog-control";
};

// "rawlog_ext_dir" -> "RAWLOG_EXT_LOGIN_DIR".
std::string login_env_name(const std::string &setting);

// Fills config from getenv (called with the environment variable names).
// On an invalid value returns false with error_r naming the variable.
bool login_config_parse(const Getenv &getenv, LoginConfig &config,
			std::string &error_r);

// Whether an authenticated session of user, from client_ip, is logged.
// passdb_fields are the passdb reply's "key=value" fields: rawlog_ext=yes
// selects the user, rawlog_ext=no deselects it even when listed (by name
// or by network).
bool login_user_selected(const LoginConfig &config, const std::string &user,
			 const std::string &client_ip,
			 const std::vector<std::string> &passdb_fields);

// Whether passdb_fields have rawlog_ext=no (the control dict cannot
// select the user then either).
bool login_user_deselected(const std::vector<std::string> &passdb_fields);

// The per-user subdirectory name: one safe path component, different for
// different users (bytes other than [A-Za-z0-9-_.+=@] as %XX). "" for an
// empty name: no directory (the base itself holds the sessions that never
// logged in), so such a user is not logged.
std::string login_user_dir(const std::string &user);

// Whether the directory open at fd is root (its st_dev and st_ino) or
// below it, as the kernel resolves it: going up by ".." from fd to the
// process's root, so symlinks, ".." and bind mounts in the path it was
// opened by count as what they lead to. 1 yes, 0 no, -1 error (errno).
int dir_within(int fd, const struct stat &root);

} // namespace rawlog_ext

#endif
