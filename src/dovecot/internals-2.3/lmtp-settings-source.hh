// Dovecot 2.3: an LMTP connection's settings are the service's
// mail_user_settings (its plugin {}); a local recipient's are its
// service user's. Include after lmtp-common.h and lmtp-recipient.h.
#ifndef RAWLOG_EXT_LMTP_SETTINGS_SOURCE_HH
#define RAWLOG_EXT_LMTP_SETTINGS_SOURCE_HH

#include "../user-settings.hh"
#include "../smtp-internals.hh"

#include <cstring>

DOVECOT_EXTERN_C_BEGIN
#include "mail-storage-service.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {

// The connection's settings: client_read_settings() has already applied
// protocol lmtp { } and the local and remote IPs' blocks.
class LmtpConnectionSettings {
public:
	explicit LmtpConnectionSettings(struct client *client)
		: client_(client) {}
	ConnectionSettingsSource source() const
	{ return { client_->event, client_->user_set }; }

private:
	struct client *client_;
};

// The head of lmtp-local.c's private struct lmtp_local_recipient
// (2.3.19.1; lrcpt->backend_context of a local recipient).
struct LmtpLocalRecipientHead23 {
	struct lmtp_recipient *rcpt;
	char *detail;
	struct mail_storage_service_user *service_user;
};

// Where a local recipient's settings come from at RCPT: the service
// user's mail_user_settings (userdb fields applied by the lookup; values
// not expanded yet). False if lrcpt does not look like what
// lmtp_local_rcpt() made of it: the copy of the layout must point back to
// lrcpt and hold a service user of this recipient's session.
inline bool lmtp_recipient_settings_source(struct lmtp_recipient *lrcpt,
					   ConnectionSettingsSource &source_r)
{
	if (internals::test_refuses("lmtp_recipient_settings_source") ||
	    lrcpt->type != LMTP_RECIPIENT_TYPE_LOCAL ||
	    lrcpt->backend_context == nullptr || lrcpt->session_id == nullptr)
		return false;
	auto *head = static_cast<const LmtpLocalRecipientHead23 *>(
		lrcpt->backend_context);
	if (head->rcpt != lrcpt || head->service_user == nullptr)
		return false;
	const struct mail_storage_service_input *input =
		mail_storage_service_user_get_input(head->service_user);
	if (input == nullptr || input->session_id == nullptr ||
	    strcmp(input->session_id, lrcpt->session_id) != 0)
		return false;
	// sets[0] is mail_user_settings (the first of the service's roots).
	void **sets = mail_storage_service_user_get_set(head->service_user);
	if (sets == nullptr || sets[0] == nullptr)
		return false;
	source_r.event = lrcpt->rcpt->event;
	source_r.user_set =
		static_cast<const struct mail_user_settings *>(sets[0]);
	return true;
}

} // namespace rawlog_ext

#endif
