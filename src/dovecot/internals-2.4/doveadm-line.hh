// Dovecot 2.4's doveadm: what differs from 2.3 for the doveadm plugin.
#ifndef RAWLOG_EXT_DOVEADM_LINE_HH
#define RAWLOG_EXT_DOVEADM_LINE_HH

// A mail command's init().
#define RAWLOG_EXT_DOVEADM_INIT_ARGS struct doveadm_mail_cmd_context *ctx

namespace rawlog_ext {

// 2.4 reads every parameter from ctx->cctx; nothing to register.
inline void doveadm_take_options(struct doveadm_mail_cmd_context *) {}

// Where a command without a user reads its settings.
inline struct event *doveadm_settings_event(struct doveadm_cmd_context *cctx)
{
	return cctx->set_event;
}

} // namespace rawlog_ext

#endif
