// doveadm rawlog status -u USER: whether that user's next session of each
// protocol would be logged, and if not exactly why, without a test login.
// It reads what a session would read (the protocol's settings, userdb
// fields, the control dict) and checks the directory as the user's uid
// (doveadm runs a mail command with it), creating nothing.
#include "../dovecot/compat.hh"
#include "../dovecot/control-dict.hh"
#include "../dovecot/doveadm-settings.hh"
#include "../core/control.hh"
#include "../core/sink.hh"

#include "doveadm-rawlog.hh"

#include <cstring>
#include <memory>
#include <string>

using namespace rawlog_ext;

namespace {

const char *const protocols[] = { "imap", "pop3", "submission", "lmtp" };

// The control dict's word on user, or "" when it does not stop logging;
// budget_r: what is left (0 = no budget).
std::string control_reason(struct mail_user *user, uint64_t &budget_r,
			   bool &configured_r)
{
	budget_r = 0;
	configured_r = false;
	std::unique_ptr<ControlDict> dict;
	std::string error;
	int ret = ControlDict::open(user, user->event, dict, error);
	if (ret == 0)
		return "";
	configured_r = true;
	if (ret < 0)
		return "control dict unreachable (" + error +
			"): only rawlog_ext_enabled=yes sessions are logged";
	ControlState state;
	std::string entry;
	if (dict->state(user->username, time(nullptr), state, budget_r, entry,
			error) < 0)
		return "control dict unreachable (" + error +
			"): only rawlog_ext_enabled=yes sessions are logged";
	switch (state) {
	case ControlState::on:
		return "";
	case ControlState::off:
		return "not enabled in the control dict "
			"(doveadm rawlog enable)";
	default:
		return std::string(control_state_name(state)) +
			" (doveadm rawlog enable starts a new one)";
	}
}

// One protocol's verdict: yes/no and why. False: it could not be judged.
bool protocol_status(struct mail_user *user, const char *protocol,
		     const std::string &control, bool control_configured,
		     uint64_t budget)
{
	Settings settings;
	bool loaded = false, tool_failed = false;
	std::string error, why;
	bool logged = false;
	Settings config;
	if (!user_protocol_settings_get(user, protocol, settings, loaded,
					tool_failed, error, &config)) {
		why = (tool_failed ? "settings not read: " :
		       "invalid setting: ") + error;
	} else if (!loaded) {
		why = std::string("rawlog_ext is not in ") + protocol +
			"'s mail_plugins";
	} else if (settings.dir.empty()) {
		why = "no directory configured (rawlog_ext_dir)";
	} else if (strcmp(protocol, "lmtp") == 0 &&
		   config.lmtp_recipients == LmtpRecipients::no) {
		// lmtp reads it per connection, before any userdb field.
		why = "rawlog_ext_lmtp_recipients=no";
	} else if (strcmp(protocol, "lmtp") == 0 &&
		   !lmtp_follows_recipients(config)) {
		// auto, and only the userdb fields name a directory.
		why = "rawlog_ext_dir comes from userdb fields only: "
			"rawlog_ext_lmtp_recipients=auto follows no LMTP "
			"connection then (set rawlog_ext_lmtp_recipients=yes "
			"in lmtp's configuration; a userdb field has no effect)";
	} else if (settings.enabled == Enabled::no) {
		why = "rawlog_ext_enabled=no";
	} else if (settings.enabled != Enabled::yes && !control.empty()) {
		why = control;
	} else {
		OpenResult r = Sink::check(settings, why);
		logged = r == OpenResult::opened;
		const std::string suffix = ": not logging";
		if (!logged && why.size() > suffix.size() &&
		    why.compare(why.size() - suffix.size(), suffix.size(),
				suffix) == 0)
			why.erase(why.size() - suffix.size());
		if (logged && settings.enabled != Enabled::yes &&
		    control_configured)
			why += budget > 0 ? ", enabled in the control dict with " +
				std::to_string(budget) + " bytes of its budget left" :
				", enabled in the control dict";
		else if (logged && settings.enabled == Enabled::yes)
			why += " (rawlog_ext_enabled=yes)";
	}
	doveadm_print(protocol);
	doveadm_print(logged ? "yes" : "no");
	doveadm_print(why.c_str());
	return !tool_failed;
}

int cmd_status_run(struct doveadm_mail_cmd_context *ctx,
		   struct mail_user *user)
{
	return guarded("rawlog status", ctx, [&] {
		uint64_t budget;
		bool configured;
		std::string control = control_reason(user, budget, configured);
		bool judged = true;
		for (const char *protocol : protocols)
			judged = protocol_status(user, protocol, control,
						 configured, budget) && judged;
		if (judged)
			return 0;
		ctx->exit_code = EX_TEMPFAIL;
		return -1;
	});
}

void cmd_status_init(RAWLOG_EXT_DOVEADM_INIT_ARGS)
{
	(void)ctx;
	doveadm_print_header("protocol", "Protocol", no_flags);
	doveadm_print_header("logged", "Logged", no_flags);
	doveadm_print_header("why", "Why", no_flags);
}

} // namespace

extern "C" struct doveadm_mail_cmd_context *rawlog_ext_cmd_status_alloc(void)
{
	struct doveadm_mail_cmd_context *ctx =
		doveadm_mail_cmd_alloc(struct doveadm_mail_cmd_context);
	ctx->v.init = cmd_status_init;
	ctx->v.run = cmd_status_run;
	doveadm_print_init(DOVEADM_PRINT_TYPE_TABLE);
	return ctx;
}
