#include "session.hh"
#include "../dovecot/guard.hh"
#include "../dovecot/user-settings.hh"

#include <unistd.h>

namespace rawlog_ext {

struct module *mail_module = nullptr;

namespace {

SessionLog *session_log_open_with(struct mail_user *user, const Leg *leg,
				  const Settings *user_settings,
				  struct event *event)
{
	Settings read_settings;
	std::string message;
	if (user_settings == nullptr &&
	    !user_settings_get(user, read_settings, message)) {
		e_error(event, "%s: not logging this session", message.c_str());
		return nullptr;
	}
	const Settings &settings = user_settings != nullptr ? *user_settings :
		read_settings;
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

namespace {

SessionLog *session_log_open_guarded(struct mail_user *user, const Leg *leg,
				     const Settings *settings)
{
	// The created hooks run for every user of the process.
	if (!mail_user_is_plugin_loaded(user, mail_module))
		return nullptr;
	struct event *event = log_event_create(user->event);
	SessionLog *log = nullptr;
	(void)guard(event, "opening the log", [&] {
		log = session_log_open_with(user, leg, settings, event);
	});
	event_unref(&event);
	return log;
}

} // namespace

SessionLog *session_log_open(struct mail_user *user, const Leg *leg)
{
	return session_log_open_guarded(user, leg, nullptr);
}

SessionLog *session_log_open(struct mail_user *user, const Settings &settings,
			     const Leg *leg)
{
	return session_log_open_guarded(user, leg, &settings);
}

} // namespace rawlog_ext
