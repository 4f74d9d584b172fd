// Entry points of lib90_rawlog_ext_plugin.so, loaded through mail_plugins
// into imap, pop3, lmtp and submission alike. Each protocol's glue looks
// up its own binary's hooks and stays out where they are absent.
#include "session.hh"

namespace {

bool imap_active, pop3_active;

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
}

void rawlog_ext_plugin_deinit(void)
{
	if (imap_active)
		rawlog_ext::imap_glue_deinit();
	if (pop3_active)
		rawlog_ext::pop3_glue_deinit();
	imap_active = pop3_active = false;
	rawlog_ext::mail_module = nullptr;
}

}
