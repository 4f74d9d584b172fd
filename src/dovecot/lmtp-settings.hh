// The LMTP connection's settings, read once per connection before any
// user is known, the way the Dovecot line reads settings (internals-2.3/:
// the service's plugin {} settings; internals-2.4/: settings_get() on the
// connection's event). rawlog_ext_lmtp_dir comes back expanded with what
// the connection knows: service, local_ip, remote_ip, local_port,
// remote_port, pid, session, hostname.
#ifndef RAWLOG_EXT_LMTP_SETTINGS_HH
#define RAWLOG_EXT_LMTP_SETTINGS_HH

#include "compat.hh"
#include "../core/settings.hh"

#include <string>

struct client;	// lmtp's (lmtp-client.h)

namespace rawlog_ext {

// What the connection's variables expand from.
struct LmtpConnectionVars {
	const struct ip_addr *local_ip;
	const struct ip_addr *remote_ip;
	in_port_t local_port;
	in_port_t remote_port;
	const char *session;
};

// False with error_r (naming the setting) if the settings cannot be used.
// If only rawlog_ext_lmtp_dir cannot be expanded: true, that setting
// cleared, and dir_error_r says why (2.4 cannot tell this apart: false).
bool lmtp_connection_settings(struct client *client,
			      const LmtpConnectionVars &vars,
			      Settings &settings_r, std::string &error_r,
			      std::string &dir_error_r);

} // namespace rawlog_ext

#endif
