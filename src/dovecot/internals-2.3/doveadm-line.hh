// Dovecot 2.3's doveadm: what differs from 2.4 for the doveadm plugin.
#ifndef RAWLOG_EXT_DOVEADM_LINE_HH
#define RAWLOG_EXT_DOVEADM_LINE_HH

// A mail command's init().
#define RAWLOG_EXT_DOVEADM_INIT_ARGS \
	struct doveadm_mail_cmd_context *ctx, const char *const args[] ATTR_UNUSED

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

// Where a command without a user reads its settings: 2.3 has no event
// for that (control_dict_init() asks doveconf).
inline struct event *doveadm_settings_event(struct doveadm_cmd_context *)
{
	return nullptr;
}

} // namespace rawlog_ext

#endif
