// Dovecot 2.4: an LMTP connection's settings are looked up through its
// event (settings_get(), protocol lmtp {} applies). Include after
// lmtp-common.h and lmtp-recipient.h. A local recipient's come from its
// service user's event.
#ifndef RAWLOG_EXT_LMTP_SETTINGS_SOURCE_HH
#define RAWLOG_EXT_LMTP_SETTINGS_SOURCE_HH

#include "../user-settings.hh"
#include "../smtp-internals.hh"

#include <cstring>

DOVECOT_EXTERN_C_BEGIN
#include "mail-storage-service.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {

// The connection's settings as a recipient's lookup would filter them:
// client->event has only the protocol, so a rawlog_ext_dir inside
// remote { }, local { } or local_name { } would be missed; a child event
// with those fields (as connection.c gives the recipients' events) finds
// it.
class LmtpConnectionSettings {
public:
	explicit LmtpConnectionSettings(struct client *client)
		: event_(event_create(client->event))
	{
		if (client->local_ip.family != 0)
			event_add_ip(event_, "local_ip", &client->local_ip);
		if (client->remote_ip.family != 0)
			event_add_ip(event_, "remote_ip", &client->remote_ip);
		if (client->local_name != nullptr)
			event_add_str(event_, "local_name", client->local_name);
	}
	~LmtpConnectionSettings() { event_unref(&event_); }
	LmtpConnectionSettings(const LmtpConnectionSettings &) = delete;
	LmtpConnectionSettings &operator=(const LmtpConnectionSettings &) = delete;
	ConnectionSettingsSource source() const { return { event_, nullptr }; }

private:
	struct event *event_;
};

// The head of lmtp-local.c's private struct lmtp_local_recipient
// (2.4.1; lrcpt->backend_context of a local recipient).
struct LmtpLocalRecipientHead24 {
	struct lmtp_recipient *rcpt;
	struct mail_storage_service_user *service_user;
};

// Where a local recipient's settings come from at RCPT: settings_get()
// on the service user's event, as lmtp_local_rcpt() itself does (userdb
// fields are overrides there). False if lrcpt does not look like what
// lmtp_local_rcpt() made of it: the copy of the layout must point back to
// lrcpt and hold a service user of this recipient's session, whose event
// descends from the recipient's.
inline bool lmtp_recipient_settings_source(struct lmtp_recipient *lrcpt,
					   ConnectionSettingsSource &source_r)
{
	if (internals::test_refuses("lmtp_recipient_settings_source") ||
	    lrcpt->type != LMTP_RECIPIENT_TYPE_LOCAL ||
	    lrcpt->backend_context == nullptr || lrcpt->session_id == nullptr)
		return false;
	auto *head = static_cast<const LmtpLocalRecipientHead24 *>(
		lrcpt->backend_context);
	if (head->rcpt != lrcpt || head->service_user == nullptr)
		return false;
	const struct mail_storage_service_input *input =
		mail_storage_service_user_get_input(head->service_user);
	struct event *event =
		mail_storage_service_user_get_event(head->service_user);
	if (input == nullptr || input->session_id == nullptr ||
	    strcmp(input->session_id, lrcpt->session_id) != 0 ||
	    event == nullptr || event_get_parent(event) != lrcpt->rcpt->event)
		return false;
	source_r.event = event;
	source_r.user_set = nullptr;
	return true;
}

} // namespace rawlog_ext

#endif
