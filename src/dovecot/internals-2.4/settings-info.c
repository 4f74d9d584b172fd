/* Built into both the mail plugin (which reads the settings with it) and
   lib90_rawlog_ext_settings.so in $(moduledir)/settings (which makes
   doveconf accept the names). */
#include "lib.h"
#include "settings-info.h"

/* All strings, so that settings_parse() stays the only validator. Only
   the two directories are templates (expanded by user-settings.cc, read
   with NO_EXPAND); %variables anywhere else are no part of a value. */
#undef DEF
#define DEF(name) \
	SETTING_DEFINE_STRUCT_STR_NOVARS(#name, name, struct rawlog_ext_settings)
#undef DEF_TEMPLATE
#define DEF_TEMPLATE(name) \
	SETTING_DEFINE_STRUCT_STR(#name, name, struct rawlog_ext_settings)

static const struct setting_define rawlog_ext_setting_defines[] = {
	DEF_TEMPLATE(rawlog_ext_dir),
	DEF(rawlog_ext_enabled),
	DEF(rawlog_ext_autocreate),
	DEF(rawlog_ext_timestamps),
	DEF(rawlog_ext_boundaries),
	DEF(rawlog_ext_direction),
	DEF(rawlog_ext_ip_in_name),
	DEF(rawlog_ext_format),
	DEF(rawlog_ext_max_size),
	DEF_TEMPLATE(rawlog_ext_lmtp_dir),
	DEF(rawlog_ext_lmtp_recipients),
	DEF(rawlog_ext_relay),
	DEF(rawlog_ext_redact),
	DEF(rawlog_ext_seal_recipients),
	/* rawlog_ext_control { dict <driver> { ... } }: the control dict
	   (doveadm rawlog), opened with dict_init_auto() in that filter. */
	{ .type = SET_FILTER_NAME, .key = "rawlog_ext_control" },

	SETTING_DEFINE_LIST_END
};

/* Empty means "the default" to settings_parse(), as unset does on 2.3. */
static const struct rawlog_ext_settings rawlog_ext_default_settings = {
	.rawlog_ext_dir = "",
	.rawlog_ext_enabled = "",
	.rawlog_ext_autocreate = "",
	.rawlog_ext_timestamps = "",
	.rawlog_ext_boundaries = "",
	.rawlog_ext_direction = "",
	.rawlog_ext_ip_in_name = "",
	.rawlog_ext_format = "",
	.rawlog_ext_max_size = "",
	.rawlog_ext_lmtp_dir = "",
	.rawlog_ext_lmtp_recipients = "",
	.rawlog_ext_relay = "",
	.rawlog_ext_redact = "",
	.rawlog_ext_seal_recipients = "",
};

const struct setting_parser_info rawlog_ext_setting_parser_info = {
	.name = "rawlog_ext",

	.defines = rawlog_ext_setting_defines,
	.defaults = &rawlog_ext_default_settings,

	.struct_size = sizeof(struct rawlog_ext_settings),
	.pool_offset1 = 1 + offsetof(struct rawlog_ext_settings, pool),
};
