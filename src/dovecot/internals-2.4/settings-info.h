/* Dovecot 2.4: rawlog_ext's settings as Dovecot's config knows them. Every
   value is a plain string, so the core validator (settings_parse()) stays
   the only one; C, because the SETTING_DEFINE_* macros are C only. */
#ifndef RAWLOG_EXT_SETTINGS_INFO_H
#define RAWLOG_EXT_SETTINGS_INFO_H

#include "settings-parser.h"

/* One field per name of rawlog_ext::setting_names[] (src/core/settings.cc),
   same names; tests/unit/test-settings-info checks they agree. */
struct rawlog_ext_settings {
	pool_t pool;
	const char *rawlog_ext_dir;
	const char *rawlog_ext_enabled;
	const char *rawlog_ext_autocreate;
	const char *rawlog_ext_timestamps;
	const char *rawlog_ext_boundaries;
	const char *rawlog_ext_direction;
	const char *rawlog_ext_ip_in_name;
	const char *rawlog_ext_format;
	const char *rawlog_ext_max_size;
	const char *rawlog_ext_lmtp_dir;
	const char *rawlog_ext_lmtp_recipients;
	const char *rawlog_ext_relay;
	const char *rawlog_ext_redact;
	const char *rawlog_ext_seal_recipients;
};

extern const struct setting_parser_info rawlog_ext_setting_parser_info;

#endif
