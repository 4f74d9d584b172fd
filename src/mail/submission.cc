// Submission glue: the client session after login. The streams live in the
// smtp-server connection (reached through smtp-internals.hh);
// the login process's pipelined bytes (e.g. MAIL FROM sent with AUTH) sit
// in the fd stream's buffer, so filters installed in the created hook,
// before the connection starts and sends "235 2.7.0 Logged in.", see the
// whole session. The relay leg to submission_relay_host gets files of its
// own when it connects (see smtp-leg.hh).
#include "session.hh"
#include "../dovecot/client-log.hh"
#include "../dovecot/guard.hh"
#include "../dovecot/user-settings.hh"
#include "smtp-leg.hh"

DOVECOT_EXTERN_C_BEGIN
#include "submission-common.h"
#include "submission-client.h"
#include "submission-backend-relay.h"
DOVECOT_EXTERN_C_END

// Defined by the submission binary only: weak, so the module loads elsewhere.
#pragma weak submission_client_created_hook_set
#pragma weak submission_module_register
#pragma weak submission_backend_relay_get_connection

namespace rawlog_ext {

namespace {

struct SubmissionClientContext {
	union submission_module_context module_ctx;
	struct mail_user *user;
	// Read once for the session and its relay leg; nullptr if invalid.
	Settings *settings;
	ClientLog *log;		// nullptr if the client session is not logged
};

MODULE_CONTEXT_DEFINE_INIT(submission_client_module,
			   &submission_module_register);

submission_client_created_func_t *next_hook_client_created;

void submission_client_destroy(struct client *client)
{
	auto *ctx = module_context<SubmissionClientContext>(
		client, submission_client_module);
	smtp_leg_unwatch(ctx);
	delete ctx->settings;
	ctx->settings = nullptr;
	if (ctx->log == nullptr) {
		ctx->module_ctx.super.destroy(client);
		return;
	}
	destroy_with_client_log(ctx->log, [&] {
		ctx->module_ctx.super.destroy(client);
	});
}

// Said only where the leg would be logged.
void warn_relay_tls(const Settings &settings, struct event *event)
{
	if (!settings.dir.empty() && settings.relay) {
		e_warning(event, "not logging the relay leg: TLS to the relay "
			  "(submission_relay_ssl) is not supported");
	}
}

void relay_connected(struct smtp_client_connection *sconn,
		     struct connection *conn, void *context)
{
	auto *ctx = static_cast<SubmissionClientContext *>(context);
	if (ctx->settings == nullptr)
		return;	// invalid: said when the session began
	internals::SmtpLegPeer peer;
	if (!internals::smtp_client_connection_peer(sconn, peer)) {
		struct event *event = log_event_create(ctx->user->event);
		e_warning(event, "not logging the relay leg: "
			  "unexpected smtp-client connection state");
		event_unref(&event);
		return;
	}
	if (peer.tls) {
		// Our filters would sit below TLS and record ciphertext.
		struct event *event = log_event_create(ctx->user->event);
		warn_relay_tls(*ctx->settings, event);
		event_unref(&event);
		return;
	}
	SessionLog *log = nullptr;
	struct event *event = log_event_create(ctx->user->event);
	(void)guard(event, "opening the relay leg log", [&] {
		Leg leg{"submission-relay", peer.peer, RedactProtocol::smtp};
		log = session_log_open(ctx->user, *ctx->settings, &leg);
	});
	event_unref(&event);
	if (log != nullptr) {
		smtp_leg_wrap(conn, log);
		SessionLog::unref(&log);
	}
}

void watch_relay(struct client *client, SubmissionClientContext *ctx)
{
	struct smtp_client_connection *relay =
		submission_backend_relay_get_connection(
			client->backend_default_relay);
	struct event *event = log_event_create(client->user->event);
	bool watched = false;
	if (guard(event, "watching the relay leg", [&] {
		struct smtp_client *smtp = internals::smtp_client_of(relay);
		watched = smtp != nullptr &&
			smtp_leg_watch(smtp, relay, relay_connected, ctx);
	}) && !watched) {
		e_warning(event, "not logging the relay leg: "
			  "unexpected smtp-client state");
	}
	event_unref(&event);
}

void submission_client_created(struct client **clientp)
{
	struct client *client = *clientp;
	if (mail_user_is_plugin_loaded(client->user, mail_module)) {
		auto *ctx = p_new(client->pool, SubmissionClientContext, 1);
		ctx->user = client->user;
		struct event *event = log_event_create(client->user->event);
		(void)guard(event, "reading the settings", [&] {
			auto settings = std::make_unique<Settings>();
			std::string error;
			if (!user_settings_get(client->user, *settings, error)) {
				e_error(event, "%s: not logging this session",
					error.c_str());
				return;
			}
			control_apply(client->user, *settings, event);
			ctx->settings = settings.release();
		});
		event_unref(&event);
		SessionLog *log = ctx->settings == nullptr ? nullptr :
			session_log_open(client->user, *ctx->settings);
		struct istream **input;
		struct ostream **output;
		if (log == nullptr) {
			// not logged
		} else if (!internals::smtp_server_stream_slots(
				client->conn, &input, &output)) {
			e_warning(log->event(), "not logging this session: "
				  "unexpected smtp-server connection state");
			log->abandon();
			SessionLog::unref(&log);
		} else {
			ctx->log = client_log_create(log, input, output,
						     smtp_parser_follows_input,
						     client->conn);
		}
		if (client->backend_default_relay != nullptr)
			watch_relay(client, ctx);
		ctx->module_ctx.super = client->v;
		client->v.destroy = submission_client_destroy;
		MODULE_CONTEXT_SET(client, submission_client_module, ctx);
	}
	if (next_hook_client_created != nullptr)
		next_hook_client_created(clientp);
}

} // namespace

bool submission_glue_init()
{
	if (submission_client_created_hook_set == nullptr)
		return false;
	next_hook_client_created =
		submission_client_created_hook_set(submission_client_created);
	return true;
}

void submission_glue_deinit()
{
	submission_client_created_hook_set(next_hook_client_created);
}

} // namespace rawlog_ext
