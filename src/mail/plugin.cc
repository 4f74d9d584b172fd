// Entry points of lib90_rawlog_ext_plugin.so, loaded through mail_plugins
// into imap, pop3, lmtp and submission alike. Each protocol's glue looks
// up its own binary's hooks and stays out where they are absent.
#include "session.hh"
#include "../dovecot/guard.hh"
#include "../dovecot/user-settings.hh"

DOVECOT_EXTERN_C_BEGIN
#include "mail-storage-hooks.h"
DOVECOT_EXTERN_C_END

namespace {

bool imap_active, pop3_active, submission_active, lmtp_active;
struct mail_storage_hooks storage_hooks;

// Where no protocol glue runs (e.g. dovecot-lda, doveadm), say so
// to an admin who configured a directory, instead of logging nothing
// silently.
void rawlog_ext_mail_user_created(struct mail_user *user)
{
	struct event *event = rawlog_ext::log_event_create(user->event);
	(void)rawlog_ext::guard(event, "reading the settings", [&] {
		rawlog_ext::Settings settings;
		std::string error;
		if (rawlog_ext::user_settings_get(user, settings, error) &&
		    !settings.dir.empty()) {
			e_debug(event, "%s sessions are not captured by this "
				"version: not logging", user->service);
		}
	});
	event_unref(&event);
}

} // namespace

extern "C" {

#define RAWLOG_EXT_EXPORT __attribute__((visibility("default")))

RAWLOG_EXT_EXPORT extern const char *rawlog_ext_plugin_version;
RAWLOG_EXT_EXPORT void rawlog_ext_plugin_init(struct module *module);
RAWLOG_EXT_EXPORT void rawlog_ext_plugin_deinit(void);

const char *rawlog_ext_plugin_version = DOVECOT_ABI_VERSION;

void rawlog_ext_plugin_init(struct module *module)
{
	rawlog_ext::mail_module = module;
	imap_active = rawlog_ext::imap_glue_init();
	pop3_active = rawlog_ext::pop3_glue_init();
	submission_active = rawlog_ext::submission_glue_init();
	lmtp_active = rawlog_ext::lmtp_glue_init();
	if (!imap_active && !pop3_active && !submission_active &&
	    !lmtp_active) {
		storage_hooks.mail_user_created = rawlog_ext_mail_user_created;
		mail_storage_hooks_add(module, &storage_hooks);
	}
}

void rawlog_ext_plugin_deinit(void)
{
	if (imap_active)
		rawlog_ext::imap_glue_deinit();
	if (pop3_active)
		rawlog_ext::pop3_glue_deinit();
	if (submission_active)
		rawlog_ext::submission_glue_deinit();
	if (lmtp_active)
		rawlog_ext::lmtp_glue_deinit();
	if (storage_hooks.mail_user_created != nullptr) {
		mail_storage_hooks_remove(&storage_hooks);
		storage_hooks.mail_user_created = nullptr;
	}
	imap_active = pop3_active = submission_active = lmtp_active = false;
	rawlog_ext::mail_module = nullptr;
}

}
