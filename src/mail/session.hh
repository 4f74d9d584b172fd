// Shared by the per-protocol glue: decide, for one mail user, whether and
// where to log, and say so in Dovecot's log.
#ifndef RAWLOG_EXT_MAIL_SESSION_HH
#define RAWLOG_EXT_MAIL_SESSION_HH

#include "../dovecot/session-log.hh"

namespace rawlog_ext {

// The module as loaded (for mail_user_is_plugin_loaded()).
extern struct module *mail_module;

// A connection Dovecot opens for the session (submission's relay leg):
// its own files, named after it. Dovecot is that connection's client:
// with rawlog_ext_redact, credentials it sends ("out") are redacted.
struct Leg {
	const char *service;	// in file names, e.g. "submission-relay"
	std::string peer;	// "host:port"
	RedactProtocol protocol;
};

// Returns the session's log (or its leg's), or nullptr when it is not
// logged: the module is not in this user's mail_plugins (nothing said),
// or the reason is logged (Debug for "not enabled", Error for a failure).
SessionLog *session_log_open(struct mail_user *user,
			     const Leg *leg = nullptr);
// The same with the user's settings already read (user_settings_get()).
SessionLog *session_log_open(struct mail_user *user, const Settings &settings,
			     const Leg *leg = nullptr);

// With a control dict (doveadm rawlog enable, issue #15): whether the
// user's session is logged. Sets settings.enabled to no when it is not
// (saying why at Debug, or a Warning once per process and cause: an
// unreachable dict leaves only rawlog_ext_enabled=yes users logged), so
// that session_log_open() opens nothing and says nothing more; when it is,
// caps max_size at what is left of the enablement's budget and sets
// settings.accounting. One lookup; call it once per session, right
// after user_settings_get(). Without a control dict: nothing changes
// (rawlog_ext_enabled=no still turns logging off). Guard it.
void control_apply(struct mail_user *user, Settings &settings,
		   struct event *event);

// Per-protocol glue, registered by the plugin entry. Each returns false
// where its binary is not the current process.
bool imap_glue_init();
void imap_glue_deinit();
bool pop3_glue_init();
void pop3_glue_deinit();
bool submission_glue_init();
void submission_glue_deinit();
bool lmtp_glue_init();
void lmtp_glue_deinit();

} // namespace rawlog_ext

#endif
