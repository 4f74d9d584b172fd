// Dovecot 2.4's doveadm: what differs from 2.3 for the doveadm plugin.
#ifndef RAWLOG_EXT_DOVEADM_LINE_HH
#define RAWLOG_EXT_DOVEADM_LINE_HH

// A mail command's init().
#define RAWLOG_EXT_DOVEADM_INIT_ARGS struct doveadm_mail_cmd_context *ctx

#include "../control-dict.hh"

#include <string>

namespace rawlog_ext {

// 2.4 reads every parameter from ctx->cctx; nothing to register.
inline void doveadm_take_options(struct doveadm_mail_cmd_context *) {}

// doveconf prints rawlog_ext's settings at the top level.
inline bool doveconf_plugin_block()
{
	return false;
}

// The configuration's control dict, for a command without a user.
inline int control_dict_init_global(struct doveadm_cmd_context *cctx,
				    struct dict **dict_r, std::string &error_r)
{
	return control_dict_init(nullptr, cctx->set_event, dict_r, error_r);
}

// The event a command without a user reads settings from (2.3: none;
// global-dirs.cc asks doveconf there).
inline struct event *doveadm_settings_event(struct doveadm_cmd_context *cctx)
{
	return cctx->set_event;
}

} // namespace rawlog_ext

#endif
