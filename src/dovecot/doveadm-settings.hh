// The settings a user's session of another protocol would have, for
// doveadm rawlog status (doveadm's own settings are doveadm's protocol's;
// see doveconf-run.hh for why doveconf is asked).
#ifndef RAWLOG_EXT_DOVEADM_SETTINGS_HH
#define RAWLOG_EXT_DOVEADM_SETTINGS_HH

#include "compat.hh"
#include "../core/settings.hh"

#include <string>

namespace rawlog_ext {

// protocol ("imap", "pop3", "lmtp", "submission"): that protocol's
// settings with user's userdb fields over them, rawlog_ext_dir expanded
// (%s / %{service} as protocol); loaded_r: rawlog_ext is in that
// protocol's mail_plugins. False with error_r: an invalid setting, or
// (tool_failed_r) doveconf could not be run. config_r (if given): the
// configuration's own settings, without the userdb fields and not
// expanded, as an LMTP connection reads them before any user is known
// (left at the defaults if they do not parse).
bool user_protocol_settings_get(struct mail_user *user, const char *protocol,
				Settings &settings_r, bool &loaded_r,
				bool &tool_failed_r, std::string &error_r,
				Settings *config_r = nullptr);

} // namespace rawlog_ext

#endif
