// Dovecot 2.3: an LMTP connection's settings are the service's
// mail_user_settings (its plugin {}). Include after lmtp-common.h.
#ifndef RAWLOG_EXT_LMTP_SETTINGS_SOURCE_HH
#define RAWLOG_EXT_LMTP_SETTINGS_SOURCE_HH

#include "../user-settings.hh"

namespace rawlog_ext {

inline ConnectionSettingsSource lmtp_settings_source(struct client *client)
{
	return { client->event, client->user_set };
}

} // namespace rawlog_ext

#endif
