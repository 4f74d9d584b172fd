// Dovecot 2.4: an LMTP connection's settings are looked up through its
// event (settings_get(), protocol lmtp {} applies). Include after
// lmtp-common.h.
#ifndef RAWLOG_EXT_LMTP_SETTINGS_SOURCE_HH
#define RAWLOG_EXT_LMTP_SETTINGS_SOURCE_HH

#include "../user-settings.hh"

namespace rawlog_ext {

inline ConnectionSettingsSource lmtp_settings_source(struct client *client)
{
	return { client->event, nullptr };
}

} // namespace rawlog_ext

#endif
