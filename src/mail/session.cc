#include "session.hh"
#include "../core/control.hh"
#include "../dovecot/control-dict.hh"
#include "../dovecot/guard.hh"
#include "../dovecot/user-settings.hh"
#include "../dovecot/warn-once.hh"

#include <unistd.h>

namespace rawlog_ext {

struct module *mail_module = nullptr;

namespace {

// Adds a session's bytes to the user's used/ counter when its Sink goes.
class DictAccounting final : public SessionAccounting {
public:
	DictAccounting(std::unique_ptr<ControlDict> dict, std::string key,
		       struct event *event)
		: dict_(std::move(dict)), key_(std::move(key)), event_(event)
	{ event_ref(event_); }
	~DictAccounting() override
	{
		(void)guard(event_, "closing the control dict", [&] {
			dict_.reset();
		});
		event_unref(&event_);
	}

	void add(uint64_t bytes) noexcept override
	{
		if (bytes == 0)
			return;
		(void)guard(event_, "counting the log's bytes", [&] {
			std::string error;
			if (dict_->add(key_, bytes, error) < 0)
				warn_once(event_, "control dict: adding to " +
					  key_ + " failed: " + error);
		});
	}

private:
	std::unique_ptr<ControlDict> dict_;
	std::string key_;
	struct event *event_;
};

} // namespace

void control_apply(struct mail_user *user, Settings &settings,
		   struct event *event)
{
	if (settings.dir.empty() || settings.enabled == Enabled::yes)
		return;
	if (settings.enabled == Enabled::no) {
		e_debug(event, "rawlog_ext_enabled=no: not logging");
		return;
	}
	std::unique_ptr<ControlDict> dict;
	std::string error;
	int ret = ControlDict::open(user, event, dict, error);
	if (ret == 0)
		return;
	ControlState state;
	uint64_t left;
	std::string entry;
	if (ret < 0 || dict->state(user->username, ioloop_time, state, left,
				   entry, error) < 0) {
		warn_once(event, (ret < 0 ? error : "control dict: " + error) +
			  ": logging only sessions rawlog_ext_enabled=yes "
			  "selects");
		settings.enabled = Enabled::no;
		return;
	}
	if (state == ControlState::invalid)
		warn_once(event, "control dict: " + entry +
			  ": invalid entry: not logging");
	if (state != ControlState::on) {
		e_debug(event, "control dict: %s: not logging",
			control_state_name(state));
		settings.enabled = Enabled::no;
		return;
	}
	if (left > 0 && (settings.max_size == 0 || left <= settings.max_size)) {
		settings.max_size = left;
		settings.max_size_is_budget = true;
	}
	e_debug(event, "control dict: enabled%s", left == 0 ? "" :
		t_strdup_printf(", %llu bytes of its budget left",
				(unsigned long long)left));
	settings.accounting = std::make_shared<DictAccounting>(
		std::move(dict), control_used_key(user->username), event);
}

namespace {

SessionLog *session_log_open_with(struct mail_user *user, const Leg *leg,
				  const Settings *user_settings,
				  struct event *event)
{
	Settings read_settings;
	std::string message;
	if (user_settings == nullptr) {
		if (!user_settings_get(user, read_settings, message)) {
			e_error(event, "%s: not logging this session",
				message.c_str());
			return nullptr;
		}
		control_apply(user, read_settings, event);
	}
	const Settings &settings = user_settings != nullptr ? *user_settings :
		read_settings;
	// Said why already (control_apply()).
	if (settings.enabled == Enabled::no)
		return nullptr;
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
