// The control dict (doveadm rawlog enable) as the login companion reads
// it. A login process is chrooted, runs as the login user and serves many
// clients at once: the only dict it can reach is Dovecot's dict proxy, on
// a dict service listener inside its chroot, and it never waits for an
// answer. Lookups and the byte count are asynchronous; what the session
// sends meanwhile stays held (SessionLog::hold()).
#ifndef RAWLOG_EXT_LOGIN_CONTROL_HH
#define RAWLOG_EXT_LOGIN_CONTROL_HH

#include "compat.hh"
#include "../core/control.hh"
#include "../core/login-config.hh"

#include <functional>
#include <string>

namespace rawlog_ext {

struct LoginControlAnswer {
	bool ok = false;		// false: error says why
	ControlState state = ControlState::off;
	uint64_t left = 0;		// the budget left (0 = none), when on
	std::string entry;		// the entry as read, for messages
	std::string error;
};

// At plugin init (before the chroot): opens the dict named by config's
// control_socket and control_name. 0 none configured, 1 opened, -1
// error_r says why.
int login_control_init(const LoginConfig &config, std::string &error_r);
void login_control_deinit();
bool login_control_configured();

// Asks for user's enablement as of now. done runs exactly once: from the
// ioloop, or before this returns if the dict failed at once or is not
// asked (64 lookups waiting in the process; for 30 s after a lookup
// failed or took more than a second). It must not throw.
void login_control_lookup(const std::string &user,
			  std::function<void(const LoginControlAnswer &)> done);

// Adds bytes to user's used/ counter; not waited for. A failure is one
// Warning per process and cause, on event.
void login_control_add(const std::string &user, uint64_t bytes,
		       struct event *event);

} // namespace rawlog_ext

#endif
