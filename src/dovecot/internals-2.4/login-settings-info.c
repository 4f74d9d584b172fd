/* Built into both the login companion (which reads the settings with it)
   and lib90_rawlog_ext_login_settings.so in $(moduledir)/settings (which
   makes doveconf accept the names). */
#include "lib.h"
#include "login-settings-info.h"

/* Without %variables: the companion reads them once at plugin init, for
   the whole process, when no user or connection is known (so with
   SETTINGS_GET_FLAG_NO_EXPAND); a '%' in a value is itself. */
#undef DEF
#define DEF(name) \
	SETTING_DEFINE_STRUCT_STR_NOVARS(#name, name, \
					 struct rawlog_ext_login_settings)

static const struct setting_define rawlog_ext_login_setting_defines[] = {
	DEF(rawlog_ext_login_dir),
	DEF(rawlog_ext_login_autocreate),
	DEF(rawlog_ext_login_timestamps),
	DEF(rawlog_ext_login_boundaries),
	DEF(rawlog_ext_login_direction),
	DEF(rawlog_ext_login_ip_in_name),
	DEF(rawlog_ext_login_format),
	DEF(rawlog_ext_login_max_size),
	DEF(rawlog_ext_login_lmtp_dir),
	DEF(rawlog_ext_login_lmtp_recipients),
	DEF(rawlog_ext_login_relay),
	DEF(rawlog_ext_login_redact),
	DEF(rawlog_ext_login_seal_recipients),
	DEF(rawlog_ext_login_select),
	DEF(rawlog_ext_login_users),
	DEF(rawlog_ext_login_networks),
	DEF(rawlog_ext_login_hold),
	DEF(rawlog_ext_login_outside_chroot),
	DEF(rawlog_ext_login_control_socket),
	DEF(rawlog_ext_login_control_name),

	SETTING_DEFINE_LIST_END
};

/* Empty: not set here (the environment variable then counts). */
static const struct rawlog_ext_login_settings rawlog_ext_login_default_settings = {
	.rawlog_ext_login_dir = "",
	.rawlog_ext_login_autocreate = "",
	.rawlog_ext_login_timestamps = "",
	.rawlog_ext_login_boundaries = "",
	.rawlog_ext_login_direction = "",
	.rawlog_ext_login_ip_in_name = "",
	.rawlog_ext_login_format = "",
	.rawlog_ext_login_max_size = "",
	.rawlog_ext_login_lmtp_dir = "",
	.rawlog_ext_login_lmtp_recipients = "",
	.rawlog_ext_login_relay = "",
	.rawlog_ext_login_redact = "",
	.rawlog_ext_login_seal_recipients = "",
	.rawlog_ext_login_select = "",
	.rawlog_ext_login_users = "",
	.rawlog_ext_login_networks = "",
	.rawlog_ext_login_hold = "",
	.rawlog_ext_login_outside_chroot = "",
	.rawlog_ext_login_control_socket = "",
	.rawlog_ext_login_control_name = "",
};

const struct setting_parser_info rawlog_ext_login_setting_parser_info = {
	.name = "rawlog_ext_login",

	.defines = rawlog_ext_login_setting_defines,
	.defaults = &rawlog_ext_login_default_settings,

	.struct_size = sizeof(struct rawlog_ext_login_settings),
	.pool_offset1 = 1 + offsetof(struct rawlog_ext_login_settings, pool),
};
