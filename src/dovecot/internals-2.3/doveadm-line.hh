// Dovecot 2.3's doveadm: what differs from 2.4 for the doveadm plugin.
#ifndef RAWLOG_EXT_DOVEADM_LINE_HH
#define RAWLOG_EXT_DOVEADM_LINE_HH

// A mail command's init().
#define RAWLOG_EXT_DOVEADM_INIT_ARGS \
	struct doveadm_mail_cmd_context *ctx, const char *const args[] ATTR_UNUSED

#include "doveconf.hh"

#include <string>

DOVECOT_EXTERN_C_BEGIN
#include "dict.h"
#include "master-service.h"
#include "master-service-settings.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {

// 2.3 hands a mail command's own options to it only through parse_arg()
// ("invalid parameter" otherwise); their values are read from ctx->cctx.
inline bool doveadm_option_taken(struct doveadm_mail_cmd_context *, int)
{
	return true;
}
inline void doveadm_take_options(struct doveadm_mail_cmd_context *ctx)
{
	ctx->v.parse_arg = doveadm_option_taken;
}

// doveconf prints rawlog_ext's settings inside "plugin {".
inline bool doveconf_plugin_block()
{
	return true;
}

// The configuration's control dict, for a command without a user: 2.3's
// doveadm has no plugin {} settings without a user, doveconf tells.
inline int control_dict_init_global(struct doveadm_cmd_context *,
				    struct dict **dict_r, std::string &error_r)
{
	std::string uri;
	if (!doveconf_plugin_value("rawlog_ext_control_dict", uri, error_r))
		return -1;
	if (uri.empty())
		return 0;
	struct dict_settings set;
	i_zero(&set);
	set.base_dir = master_service_settings_get(master_service)->base_dir;
	const char *error;
	if (dict_init(uri.c_str(), &set, dict_r, &error) < 0) {
		error_r = "rawlog_ext_control_dict: dict_init(" + uri +
			") failed: " + error;
		return -1;
	}
	return 1;
}

// The event a command without a user reads settings from (2.3: none;
// global-dirs.cc asks doveconf there).
inline struct event *doveadm_settings_event(struct doveadm_cmd_context *)
{
	return nullptr;
}

} // namespace rawlog_ext

#endif
