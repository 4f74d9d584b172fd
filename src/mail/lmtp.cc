// LMTP glue. lmtp loads the service's mail_plugins for its first
// connection, before that connection's server side exists, so the created
// hook sees every connection from its greeting, running as root. There we
// wrap the connection's streams (as for submission) and feed:
//  - the connection log, in rawlog_ext_lmtp_dir (expanded with what is
//    known before any user: %{service} %{remote_ip} %{session} ...; on
//    2.3 also %s %l %r %p), and
//  - an LmtpSplitter, which cuts each delivery into what one recipient
//    saw. At RCPT (lmtp has just looked the recipient up: their settings,
//    userdb fields included, are known) we tell it whether the recipient
//    can log; a transaction's message is spooled only if one can. At
//    local delivery (euid = the recipient) the recipient's log is opened
//    in their rawlog_ext_dir and attached.
// Proxied recipients' backend legs (lmtp_proxy) get files of their own in
// rawlog_ext_lmtp_dir (see smtp-leg.hh). lib-smtp's and lmtp-proxy's
// private state is reached only through smtp-internals.hh.
#include "session.hh"
#include "../dovecot/client-log.hh"
#include "../dovecot/guard.hh"
#include "../dovecot/user-settings.hh"
#include "smtp-leg.hh"
#include "../core/lmtp-splitter.hh"

#include <new>
#include <unistd.h>

DOVECOT_EXTERN_C_BEGIN
#include "lmtp-common.h"
#include "lmtp-recipient.h"
#include "smtp-address.h"
DOVECOT_EXTERN_C_END

#include "lmtp-settings-source.hh"	// per Dovecot line

// Defined by the lmtp binary only: weak, so the module loads elsewhere.
#pragma weak lmtp_client_created_hook_set
#pragma weak lmtp_module_register

namespace rawlog_ext {

namespace {

// Large messages wait here (unlinked) until their recipients' logs open.
const char spool_dir[] = "/tmp";

struct LmtpClientContext;
void tls_started(LmtpClientContext *ctx);
void connection_failed(LmtpClientContext *ctx);

// Follows the connection's protocol: per-recipient logs, and STARTTLS.
class ConnectionTap final : public SessionTap {
public:
	ConnectionTap(bool recipients, struct event *event)
		: splitter(spool_dir, recipients), event_(event)
	{ event_ref(event_); }
	~ConnectionTap() override { event_unref(&event_); }

	void data(Direction direction, const unsigned char *data, size_t size,
		  const struct timeval &now) noexcept override
	{
		if (failed_)
			return;
		if (!guard(event_, "following the LMTP connection", [&] {
			if (direction == Direction::in)
				splitter.client_data(data, size, now);
			else
				splitter.server_data(data, size, now);
		})) {
			// Without the protocol followed, neither the
			// recipients' parts nor STARTTLS can be told.
			failed_ = true;
			if (ctx != nullptr)
				connection_failed(ctx);
			return;
		}
		while (splitter.take_not_kept())
			e_debug(event_, "not spooling a transaction's "
				"message: none of its recipients logs");
		if (direction == Direction::out && ctx != nullptr &&
		    splitter.take_tls_started())
			tls_started(ctx);
	}

	bool failed() const { return failed_; }

	LmtpSplitter splitter;
	LmtpClientContext *ctx = nullptr;

private:
	struct event *event_;
	bool failed_ = false;
};

// One recipient's log, fed by the splitter. The replay at attach() is
// a dozen short pieces in both directions: held, they go out in one
// write per file (the message with them), not one or two each.
class UserDeliveryLog final : public RecipientLog {
public:
	explicit UserDeliveryLog(SessionLog *log) : log_(log)
	{ log_->hold_output(); }
	~UserDeliveryLog() override { SessionLog::unref(&log_); }
	void write(Direction direction, const unsigned char *data, size_t size,
		   const struct timeval &time) override
	{
		log_->write_at(direction, data, size, time);
	}
	void caught_up() override { log_->release_output(); }

private:
	SessionLog *log_;
};

struct LmtpClientContext {
	union lmtp_module_context module_ctx;
	struct client *client;
	ClientLog *client_log;
	SessionLog *log;		// a reference of our own
	ConnectionTap *tap;		// owned by log
	bool recipients;		// rawlog_ext_lmtp_recipients
	struct event *event;
	// With rawlog_ext_lmtp_dir: the connection's settings, dir expanded
	// (for the proxy legs too); else nullptr.
	Settings *settings;
	bool proxy_legs_off;	// said why once
	bool rcpt_decide_off;	// said why once: every message is spooled
	struct timeout *to_tls;
	unsigned int tls_polls;	// since the 220 to STARTTLS
};

MODULE_CONTEXT_DEFINE_INIT(lmtp_client_module, &lmtp_module_register);

lmtp_client_created_func_t *next_hook_client_created;

// STARTTLS: lib-smtp stacks TLS on its connection's streams (ours) once
// this reply is flushed. Our filters go back on top, above TLS, once that
// is done (the next ioloop run, long before the handshake can finish);
// the bytes until then are TLS records: logging is paused meanwhile.
void tls_restack(LmtpClientContext *ctx)
{
	timeout_remove(&ctx->to_tls);
	struct smtp_server_connection *conn = ctx->client->conn;
	switch (internals::smtp_server_tls_state(conn)) {
	case internals::SmtpServerTls::gone:
		return;	// going away (or unknown): logging stays paused
	case internals::SmtpServerTls::pending:
		// The 220 is not all out yet: TLS comes once it is, from an
		// output callback. Look again in the very next ioloop run
		// (timeouts run before I/O there): the client's first bytes
		// over TLS must not be read before we are back on top. Only
		// a stuck flush gets the slower pace.
		ctx->to_tls = timeout_add_short(++ctx->tls_polls < 100 ? 0 : 10,
						tls_restack, ctx);
		return;
	case internals::SmtpServerTls::started:
		break;
	}
	// lib-smtp may go on from the handshake to the client's first bytes
	// over TLS (and its reply) without returning to the ioloop, before
	// we are back on top: those read are taken from the TLS stream's
	// buffer if it still has them; anything else is said.
	struct istream **input;
	struct ostream **output;
	const unsigned char *missed = nullptr;
	size_t missed_size = 0;
	uoff_t missed_out = 0;
	if (internals::smtp_server_stream_slots(conn, &input, &output)) {
		missed_out = (*output)->offset;
		if ((*input)->v_offset > 0 &&
		    !internals::istream_consumed(*input, &missed,
						 &missed_size)) {
			e_warning(ctx->event, "the connection log misses the "
				  "first %" PRIuUOFF_T" bytes the client sent "
				  "after STARTTLS%s", (*input)->v_offset,
				  ctx->recipients ? "; no per-recipient logs "
				  "for the rest of this connection" : "");
			ctx->recipients = false;
			missed = nullptr;
		}
	}
	if (missed_out > 0) {
		// Replies the splitter did not see: it cannot follow on.
		e_warning(ctx->event, "the connection log misses the first %"
			  PRIuUOFF_T" bytes sent to the client after STARTTLS%s",
			  missed_out, ctx->recipients ? "; no per-recipient "
			  "logs for the rest of this connection" : "");
		ctx->recipients = false;
	}
	ctx->client_log->sync();
	if (!internals::smtp_server_input_restart(conn)) {
		e_warning(ctx->event, "not logging the rest of this connection "
			  "after STARTTLS: unexpected smtp-server state");
		connection_failed(ctx);
		return;
	}
	ctx->log->set_paused(false);
	if (missed != nullptr && missed_size > 0)
		ctx->log->write(Direction::in, missed, missed_size);
}

void tls_started(LmtpClientContext *ctx)
{
	ctx->log->set_paused(true);
	if (ctx->to_tls == nullptr) {
		ctx->tls_polls = 0;
		// Test builds can make us late, as a busy lib-smtp can.
		ctx->to_tls = timeout_add_short(
			internals::test_refuses("prompt_tls_restack") ? 300 : 0,
			tls_restack, ctx);
	}
}

void connection_failed(LmtpClientContext *ctx)
{
	ctx->recipients = false;
	ctx->log->abandon();
}

void report_splitter_problem(LmtpClientContext *ctx)
{
	std::string problem;
	if (ctx->recipients && ctx->tap->splitter.take_problem(problem))
		e_error(ctx->event, "no per-recipient logs for the rest of "
			"this connection: %s", problem.c_str());
}

// Opens the recipient's log (as the recipient: their settings, their
// file ownership) and gives it its part of the connection.
void log_delivery(LmtpClientContext *ctx, struct lmtp_recipient *lrcpt,
		  struct mail_user *user)
{
	Settings settings;
	std::string settings_error;
	bool have_settings = user_settings_get(user, settings, settings_error);
	bool wanted = !have_settings || !settings.dir.empty();
	std::string address = smtp_address_encode(lrcpt->rcpt->path);
	std::string error;
	// First whether the part can be found, so no file is made in vain.
	if (!ctx->tap->splitter.can_attach(lrcpt->rcpt->index, address,
					   error)) {
		report_splitter_problem(ctx);
		struct event *event = log_event_create(user->event);
		if (wanted)
			e_error(event, "delivery not logged: %s",
				error.c_str());
		else	// e.g. not spooled: nobody of the transaction logs
			e_debug(event, "%s", error.c_str());
		event_unref(&event);
		return;
	}
	if (!have_settings) {
		if (mail_user_is_plugin_loaded(user, mail_module)) {
			struct event *event = log_event_create(user->event);
			e_error(event, "%s: not logging this session",
				settings_error.c_str());
			event_unref(&event);
		}
		return;
	}
	{
		struct event *event = log_event_create(user->event);
		bool ok = guard(event, "asking the control dict", [&] {
			control_apply(user, settings, event);
		});
		event_unref(&event);
		if (!ok)
			return;
	}
	SessionLog *user_log = session_log_open(user, settings);
	if (user_log == nullptr)
		return;
	// Owns user_log from here, even if what follows throws.
	std::unique_ptr<RecipientLog> recipient_log(
		new (std::nothrow) UserDeliveryLog(user_log));
	if (recipient_log == nullptr) {
		SessionLog::unref(&user_log);
		throw std::bad_alloc();
	}
	// The splitter takes it (and frees it on failure); the event stays
	// ours for the message.
	struct event *event = user_log->event();
	event_ref(event);
	bool attached = false;
	std::string attach_error;
	(void)guard(event, "attaching the delivery log", [&] {
		attached = ctx->tap->splitter.attach(
			lrcpt->rcpt->index, address, std::move(recipient_log),
			attach_error);
		if (!attached)
			e_error(event, "delivery not logged: %s",
				attach_error.c_str());
	});
	event_unref(&event);
}

int lmtp_local_deliver(struct client *client, struct lmtp_recipient *lrcpt,
		       struct smtp_server_cmd_ctx *cmd,
		       struct smtp_server_transaction *trans,
		       struct lmtp_local_deliver_context *lldctx)
{
	auto *ctx = module_context<LmtpClientContext>(client,
						       lmtp_client_module);
	if (ctx->recipients) {
		(void)guard(ctx->event, "opening the delivery log", [&] {
			log_delivery(ctx, lrcpt, lldctx->rcpt_user);
		});
	}
	return ctx->module_ctx.super.local_deliver(client, lrcpt, cmd, trans,
						   lldctx);
}

// Each transaction has a proxy (and an smtp_client) of its own, freed
// with it: stop watching before its memory can be reused.
void lmtp_trans_free(struct client *client,
		     struct smtp_server_transaction *trans)
{
	auto *ctx = module_context<LmtpClientContext>(client,
						       lmtp_client_module);
	smtp_leg_unwatch(ctx);
	ctx->module_ctx.super.trans_free(client, trans);
}

void lmtp_client_destroy(struct client *client)
{
	auto *ctx = module_context<LmtpClientContext>(client,
						       lmtp_client_module);
	SessionLog *log = ctx->log;
	struct event *event = ctx->event;
	(void)guard(event, "reporting on per-recipient logs", [&] {
		report_splitter_problem(ctx);
	});
	smtp_leg_unwatch(ctx);
	timeout_remove(&ctx->to_tls);
	ctx->tap->ctx = nullptr;	// the log may outlive ctx
	delete ctx->settings;
	destroy_with_client_log(ctx->client_log, [&] {
		ctx->module_ctx.super.destroy(client);
	});
	SessionLog::unref(&log);
	event_unref(&event);
}

// The connection's session id (lib-smtp's), or "".
const char *connection_session(struct client *client)
{
	struct smtp_proxy_data proxy_data;
	smtp_server_connection_get_proxy_data(client->conn, &proxy_data);
	return proxy_data.session != nullptr ? proxy_data.session : "";
}

// rawlog_ext_lmtp_dir, expanded with what a connection knows.
bool expand_connection_dir(struct client *client, const char *value,
			   std::string &dir_r, std::string &error_r)
{
	const char *session = connection_session(client);
	const TemplateVariable vars[] = {
		{ 's', "service", "lmtp" },
		{ 'l', "local_ip", net_ip2addr(&client->local_ip) },
		{ 'r', "remote_ip", net_ip2addr(&client->remote_ip) },
		{ 'p', "pid", my_pid },
		{ '\0', "session", session },
		{ '\0', "hostname", my_hostname },
		{ '\0', "local_port", dec2str(client->local_port) },
		{ '\0', "remote_port", dec2str(client->remote_port) },
		{ '\0', nullptr, nullptr }
	};
	return expand_dir_template("rawlog_ext_lmtp_dir", value, vars, dir_r,
				   error_r);
}

// A log file (pair) in the expanded rawlog_ext_lmtp_dir.
std::unique_ptr<Sink> open_connection_sink(struct client *client,
					   const Settings &settings,
					   const char *service,
					   const std::string &peer,
					   struct event *event)
{
	NameParts parts;
	parts.time = ioloop_time;
	parts.service = service;
	parts.session = connection_session(client);
	parts.pid = getpid();
	parts.hostname = my_hostname;
	parts.peer = peer;
	if (settings.ip_in_name)
		parts.ip = net_ip2addr(&client->remote_ip);

	std::string message;
	std::unique_ptr<Sink> sink;
	OpenResult result = Sink::open(settings, parts, sink, message);
	return sink_opened(result, std::move(sink),
			   std::string(service) + ": " + message, event);
}

void proxy_connected(struct smtp_client_connection *sconn,
		     struct connection *conn, void *context)
{
	auto *ctx = static_cast<LmtpClientContext *>(context);
	SessionLog *log = nullptr;
	(void)guard(ctx->event, "opening the proxy leg log", [&] {
		internals::SmtpLegPeer peer;
		if (!internals::smtp_client_connection_peer(sconn, peer)) {
			e_warning(ctx->event, "not logging a proxy leg: "
				  "unexpected smtp-client connection state");
			return;
		}
		if (peer.tls) {
			e_warning(ctx->event, "not logging the proxy leg to "
				  "%s: TLS to the backend is not supported",
				  peer.peer.c_str());
			return;
		}
		std::unique_ptr<Sink> sink = open_connection_sink(
			ctx->client, *ctx->settings, "lmtp-proxy",
			peer.peer, ctx->event);
		if (sink != nullptr)
			log = new SessionLog(std::move(sink), ctx->event);
	});
	if (log != nullptr) {
		smtp_leg_wrap(conn, log);
		SessionLog::unref(&log);
	}
}

// After lmtp looked a local recipient up (smtp-server sends the RCPT's
// reply only later, from its output handler: the splitter sees the reply
// after this): whether the recipient can log, so that its transaction's
// message is spooled. When unsure, it is (as before): delivery then says
// why nothing is logged.
void rcpt_decide(LmtpClientContext *ctx, struct lmtp_recipient *lrcpt)
{
	LmtpSplitter &splitter = ctx->tap->splitter;
	if (splitter.broken())
		return;	// no recipient parts any more (said at delivery)
	ConnectionSettingsSource source;
	if (!lmtp_recipient_settings_source(lrcpt, source)) {
		ctx->rcpt_decide_off = true;
		splitter.keep_everything();
		e_warning(ctx->event, "spooling every message of this "
			  "connection: unexpected lmtp recipient state");
		return;
	}
	Settings settings;
	std::string error;
	// Values as configured (not expanded yet): only whether there is
	// a directory matters here (with a control dict, whether the user is
	// enabled is known at delivery only: kept, in case).
	if (connection_settings_get(source, settings, error) &&
	    (settings.dir.empty() || settings.enabled == Enabled::no))
		return;
	std::string address = smtp_address_encode(lrcpt->rcpt->path);
	if (!splitter.keep_for_recipient(address)) {
		ctx->rcpt_decide_off = true;
		splitter.keep_everything();
		e_warning(ctx->event, "spooling every message of this "
			  "connection: RCPT for %s not found in the traffic",
			  address.c_str());
	}
}

// After a RCPT: whether a local recipient logs; if it was proxied,
// watch the proxy's backend connections.
int lmtp_cmd_rcpt(struct client *client, struct smtp_server_cmd_ctx *cmd,
		  struct lmtp_recipient *lrcpt)
{
	auto *ctx = module_context<LmtpClientContext>(client,
						       lmtp_client_module);
	int ret = ctx->module_ctx.super.cmd_rcpt(client, cmd, lrcpt);
	// ret < 0: refused (and replied to); a proxied recipient's log is
	// its proxy leg.
	if (ret >= 0 && ctx->recipients && !ctx->rcpt_decide_off &&
	    lrcpt->type == LMTP_RECIPIENT_TYPE_LOCAL) {
		if (!guard(ctx->event, "deciding whether a recipient logs",
			   [&] { rcpt_decide(ctx, lrcpt); })) {
			ctx->rcpt_decide_off = true;
			ctx->tap->splitter.keep_everything();
		}
	}
	if (ctx->settings == nullptr || ctx->proxy_legs_off)
		return ret;
	if (client->proxy == nullptr) {
		// Up to 2.4.3 the passdb lookup is synchronous: a recipient
		// being proxied has its proxy by now. From 2.4.4 the proxy
		// comes from the lookup's callback and its first connection
		// connects with nothing of ours watching.
		if (lrcpt->type == LMTP_RECIPIENT_TYPE_PROXY &&
		    !smtp_server_recipient_is_replied(lrcpt->rcpt)) {
			ctx->proxy_legs_off = true;
			e_warning(ctx->event, "not logging proxy legs: the "
				  "passdb lookup of a proxied recipient is "
				  "asynchronous in this Dovecot version");
		}
		return ret;
	}
	struct smtp_client *smtp = internals::lmtp_proxy_smtp_client(
		client->proxy, client, client->event,
		smtp_server_connection_get_transaction(client->conn));
	if (smtp == nullptr) {
		ctx->proxy_legs_off = true;
		e_warning(ctx->event, "not logging proxy legs: "
			  "unexpected lmtp proxy state");
		return ret;
	}
	// Again for each RCPT: each transaction has a proxy of its own (which
	// may even reuse the freed one's address), with new connections.
	smtp_leg_unwatch(ctx);
	bool watched = false;
	if (!guard(ctx->event, "watching the proxy connections", [&] {
		watched = smtp_leg_watch(smtp, nullptr, proxy_connected, ctx);
	})) {
		ctx->proxy_legs_off = true;
	} else if (!watched) {
		ctx->proxy_legs_off = true;
		e_warning(ctx->event, "not logging proxy legs: "
			  "unexpected smtp-client state");
	}
	return ret;
}

// The connection's settings (before any user) and log; input_r and
// output_r: where its streams are.
void connection_log_open(struct client *client, struct event *event,
			 std::unique_ptr<Sink> &sink_r,
			 std::unique_ptr<Settings> &settings_r,
			 bool &recipients_r, struct istream ***input_r,
			 struct ostream ***output_r)
{
	auto settings = std::make_unique<Settings>();
	std::string error;
	if (!connection_settings_get(LmtpConnectionSettings(client).source(),
				     *settings, error)) {
		e_error(event, "%s: not logging this connection",
			error.c_str());
		return;
	}
	// auto: recipients' logs only where the configuration names a
	// directory, so that the module loaded with nothing configured does
	// no work per connection (a directory that only userdb fields name
	// needs rawlog_ext_lmtp_recipients=yes; doveadm rawlog status says so).
	bool recipients = lmtp_follows_recipients(*settings);
	if (!recipients && settings->lmtp_dir.empty()) {
		e_debug(event, "%s",
			settings->lmtp_recipients == LmtpRecipients::no ?
			"rawlog_ext_lmtp_dir not set and "
			"rawlog_ext_lmtp_recipients=no: not logging" :
			"no rawlog_ext_dir or rawlog_ext_lmtp_dir configured "
			"(rawlog_ext_lmtp_recipients=auto): not following "
			"this connection");
		return;
	}
	if (!internals::smtp_server_stream_slots(client->conn, input_r,
						 output_r)) {
		e_warning(event, "not logging this connection: "
			  "unexpected smtp-server connection state");
		return;
	}
	recipients_r = recipients;
	if (settings->lmtp_dir.empty()) {
		e_debug(event, "rawlog_ext_lmtp_dir not set: no connection log");
	} else if (!expand_connection_dir(client, settings->lmtp_dir.c_str(),
					  settings->dir, error)) {
		e_error(event, "%s: no connection log", error.c_str());
	} else {
		sink_r = open_connection_sink(client, *settings, "lmtp", "",
					      event);
		settings_r = std::move(settings);
	}
}

void lmtp_client_created(struct client **clientp)
{
	struct client *client = *clientp;
	struct event *event = log_event_create(client->event);
	LmtpClientContext *ctx = nullptr;
	(void)guard(event, "opening the connection log", [&] {
		std::unique_ptr<Sink> sink;
		std::unique_ptr<Settings> settings;
		bool recipients = false;
		struct istream **input = nullptr;
		struct ostream **output = nullptr;
		connection_log_open(client, event, sink, settings, recipients,
				    &input, &output);
		if (settings == nullptr && !recipients)
			return;
		auto tap = std::make_unique<ConnectionTap>(recipients, event);
		ConnectionTap *tap_ptr = tap.get();
		// Each message only if a recipient can log (see rcpt_decide).
		tap_ptr->splitter.keep_only_requested();
		auto *log = new SessionLog(std::move(sink), event,
					   std::move(tap));
		// Takes our reference to log, even when it fails.
		ClientLog *client_log = client_log_create(
			log, input, output, smtp_parser_follows_input,
			client->conn);
		if (client_log == nullptr)
			return;
		ctx = p_new(client->pool, LmtpClientContext, 1);
		ctx->client = client;
		ctx->log = log;
		log->ref();
		ctx->client_log = client_log;
		ctx->tap = tap_ptr;
		tap_ptr->ctx = ctx;
		ctx->recipients = recipients;
		ctx->event = event;
		event_ref(event);
		ctx->settings = settings.release();
	});
	if (ctx != nullptr) {
		ctx->module_ctx.super = client->v;
		client->v.destroy = lmtp_client_destroy;
		client->v.local_deliver = lmtp_local_deliver;
		client->v.cmd_rcpt = lmtp_cmd_rcpt;
		client->v.trans_free = lmtp_trans_free;
		MODULE_CONTEXT_SET(client, lmtp_client_module, ctx);
	}
	event_unref(&event);
	if (next_hook_client_created != nullptr)
		next_hook_client_created(clientp);
}

} // namespace

bool lmtp_glue_init()
{
	if (lmtp_client_created_hook_set == nullptr)
		return false;
	next_hook_client_created =
		lmtp_client_created_hook_set(lmtp_client_created);
	return true;
}

void lmtp_glue_deinit()
{
	lmtp_client_created_hook_set(next_hook_client_created);
}

} // namespace rawlog_ext
