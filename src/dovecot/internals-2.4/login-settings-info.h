/* Dovecot 2.4: the login companion's settings as Dovecot's config knows
   them: rawlog_ext_login_<name> for each RAWLOG_EXT_LOGIN_<NAME> variable
   of src/core/login-config.hh. Plain strings without %variables:
   login_config_parse() stays the one validator. C, because the
   SETTING_DEFINE_* macros are C only. */
#ifndef RAWLOG_EXT_LOGIN_SETTINGS_INFO_H
#define RAWLOG_EXT_LOGIN_SETTINGS_INFO_H

#include "settings-parser.h"

struct rawlog_ext_login_settings {
	pool_t pool;
	/* The rawlog_ext_* format settings (src/core/settings.cc) ... */
	const char *rawlog_ext_login_dir;
	const char *rawlog_ext_login_autocreate;
	const char *rawlog_ext_login_timestamps;
	const char *rawlog_ext_login_boundaries;
	const char *rawlog_ext_login_direction;
	const char *rawlog_ext_login_ip_in_name;
	const char *rawlog_ext_login_format;
	const char *rawlog_ext_login_max_size;
	const char *rawlog_ext_login_lmtp_dir;
	const char *rawlog_ext_login_lmtp_recipients;
	const char *rawlog_ext_login_relay;
	const char *rawlog_ext_login_redact;
	const char *rawlog_ext_login_seal_recipients;
	/* ... and the login-only ones. */
	const char *rawlog_ext_login_select;
	const char *rawlog_ext_login_users;
	const char *rawlog_ext_login_networks;
	const char *rawlog_ext_login_hold;
	const char *rawlog_ext_login_outside_chroot;
	const char *rawlog_ext_login_control_socket;
	const char *rawlog_ext_login_control_name;
};

extern const struct setting_parser_info rawlog_ext_login_setting_parser_info;

#endif
