/* lib90_rawlog_ext_settings.so: loaded by Dovecot's config process from
   $(moduledir)/settings, so the rawlog_ext_* names are known settings.
   The exports are named after the file (module name rawlog_ext_settings). */
#include "lib.h"
#include "settings-info.h"

#define RAWLOG_EXT_EXPORT __attribute__((visibility("default")))

RAWLOG_EXT_EXPORT extern const char *rawlog_ext_settings_version;
RAWLOG_EXT_EXPORT extern const struct setting_parser_info *
rawlog_ext_settings_set_infos[];

const char *rawlog_ext_settings_version = DOVECOT_ABI_VERSION;

const struct setting_parser_info *rawlog_ext_settings_set_infos[] = {
	&rawlog_ext_setting_parser_info,
	NULL
};
