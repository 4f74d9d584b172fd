#include "session.hh"
#include "../dovecot/guard.hh"

#include <unistd.h>

DOVECOT_EXTERN_C_BEGIN
#include "var-expand.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {

struct module *mail_module = nullptr;

namespace {

// rawlog_ext_dir as configured, before Dovecot expanded it: every
// variable in it must have a value for this user.
bool check_dir_variables(struct mail_user *user, std::string &error_r)
{
	const char *tmpl = mail_user_set_plugin_getenv(user->unexpanded_set,
						       "rawlog_ext_dir");
	if (tmpl == nullptr)
		return true;
	return check_template_variables("rawlog_ext_dir", tmpl,
		[user](const std::string &variable, std::string &value_r,
		       std::string &error_r) {
			string_t *str = t_str_new(128);
			const char *error;
			if (var_expand_with_funcs(str, variable.c_str(),
					mail_user_var_expand_table(user),
					mail_user_var_expand_func_table, user,
					&error) <= 0) {
				error_r = error;
				return false;
			}
			value_r = str_c(str);
			return true;
		}, error_r);
}

SessionLog *session_log_open_with(struct mail_user *user, const Leg *leg,
				  struct event *event)
{
	Settings settings;
	std::string message;
	if (!settings_parse([user](const char *name) {
			return mail_user_plugin_getenv(user, name);
		}, settings, message)) {
		e_error(event, "%s: not logging this session", message.c_str());
		return nullptr;
	}
	if (!settings.dir.empty() && !check_dir_variables(user, message)) {
		e_error(event, "%s: not logging this session", message.c_str());
		return nullptr;
	}
	if (leg != nullptr && !settings.relay) {
		e_debug(event, "rawlog_ext_relay=no: not logging the %s leg",
			leg->service);
		return nullptr;
	}

	NameParts parts;
	parts.time = ioloop_time;
	parts.service = leg != nullptr ? leg->service :
		user->service != nullptr ? user->service : "";
	if (leg != nullptr)
		parts.peer = leg->peer;
	parts.session = user->session_id != nullptr ? user->session_id : "";
	parts.pid = getpid();
	parts.hostname = my_hostname;
	if (settings.ip_in_name && user->conn.remote_ip != nullptr)
		parts.ip = net_ip2addr(user->conn.remote_ip);

	std::unique_ptr<Sink> sink;
	OpenResult result = Sink::open(settings, parts, sink, message);
	sink = sink_opened(result, std::move(sink), message, event);
	if (sink == nullptr)
		return nullptr;
	auto *log = new SessionLog(std::move(sink), event);
	if (leg != nullptr && settings.redact)
		log->set_redactor(std::make_unique<Redactor>(leg->protocol),
				  Direction::out);
	return log;
}

} // namespace

SessionLog *session_log_open(struct mail_user *user, const Leg *leg)
{
	// The created hooks run for every user of the process.
	if (!mail_user_is_plugin_loaded(user, mail_module))
		return nullptr;
	struct event *event = log_event_create(user->event);
	SessionLog *log = nullptr;
	(void)guard(event, "opening the log", [&] {
		log = session_log_open_with(user, leg, event);
	});
	event_unref(&event);
	return log;
}

} // namespace rawlog_ext
