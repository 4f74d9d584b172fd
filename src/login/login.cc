// rawlog_ext_login: the login-process companion (login_plugins =
// rawlog_ext_login). It sees what no mail process sees: the conversation
// before login, and all of a proxied session, which the login process
// relays for its whole life.
//
// Loaded and initialised as root before the process chroots to
// $base_dir/login and becomes $default_login_user: the base directory is
// opened then and every file is created relative to it later. Settings
// come from the environment (import_environment, see login-config.hh);
// on 2.4 also from rawlog_ext_login_* settings, which win, when the login
// settings module is installed (see login_settings_read()).
//
// Per session: the client's streams get our filters when the client is
// allocated (above implicit TLS, if any), and again above TLS after
// STARTTLS (2.4: after every change Dovecot announces through
// iostream_change_post). What passes is redacted and held in memory
// until the user is known; then it goes to <base>/<user>/ if the user is
// selected, or is dropped. With RAWLOG_EXT_LOGIN_SELECT=all, sessions
// that never log in are written to <base>/ when they end.
//
// Known limit: a COMPRESS the backend does itself is relayed compressed,
// and both legs then hold the compressed bytes (2.3; also seen on 2.4.1
// with a backend that trusts the proxy and multiplexes).
#include "../dovecot/client-log.hh"
#include "../dovecot/guard.hh"
#include "../dovecot/login-control.hh"
#include "../dovecot/warn-once.hh"
#include "../core/login-config.hh"
#include "multiplex-tap.hh"

#include <cerrno>
#include <fcntl.h>
#include <new>
#include <sys/stat.h>
#include <unistd.h>

DOVECOT_EXTERN_C_BEGIN
#include "login-common.h"
#include "client-common.h"
#include "login-proxy.h"
DOVECOT_EXTERN_C_END

#include "../dovecot/login-internals.hh"

namespace rawlog_ext {

namespace {

struct Pending;

struct LoginClientContext {
	union login_client_module_context module_ctx;
	ClientLog *client_log;
	SessionLog *log;		// a reference of our own
	struct event *event;
	bool decided;			// logged to a file, or dropped
	// The user decided about; their subdirectory if selected.
	std::string *decided_user;
	std::string *user_dir;
	// Proxying: the proxy's own input callback; our backend filters.
	login_proxy_input_callback_t *proxy_input_callback;
	// The backend input we saw last (referenced: a reconnect's new
	// stream must not be taken for it at a reused address), and the
	// decoder its log goes through (owned by that stream's log).
	struct istream *backend_input;
	MultiplexTap *backend_tap;
	// proxy_backend() refused at a backend input (said once).
	bool backend_refused;
	// The line announces stream changes (2.4): no STARTTLS hooks then.
	bool hooked_iostream_change;
	// Our filters cannot follow the client's streams any more (2.4:
	// its output multiplexes): said once, not logged from then on.
	bool streams_refused;
	// The control dict is being asked about decided_user (referenced).
	Pending *pending;
	// The files' settings when the control dict enabled the user (its
	// budget caps them); nullptr: config->settings.
	Settings *file_settings;
};

MODULE_CONTEXT_DEFINE_INIT(login_client_module, &login_module_register);

struct module *login_module;
LoginConfig *config;
// submission-login's conn_start_tls on 2.3 (the same for every client).
login_internals::submission_start_tls_t *smtp_start_tls;
int base_fd = -1;
RedactProtocol protocol;

LoginClientContext *context_of(struct client *client)
{
	return module_context<LoginClientContext>(client,
						  login_client_module);
}

// Our lines' event is not a child of client->event: that one's message
// callback reads the client, its TLS state among others, and
// client_disconnect() destroys client->ssl_iostream (client->tls stays
// set) before v.destroy, where a never-logged-in session is written out;
// a proxied session's streams, which keep our SessionLog, are freed after
// the client. This event carries copies of what the client's lines
// show, so it never needs the client again.
const char *own_log_message(void *context, enum log_type,
			    const char *message)
{
	auto *event = static_cast<struct event *>(context);
	const char *user = event_find_field_recursive_str(event, "user");
	const char *rip = event_find_field_recursive_str(event, "remote_ip");
	const char *session = event_find_field_recursive_str(event, "session");
	return t_strdup_printf("%s: user=<%s>, rip=%s%s%s%s", message,
			       user == nullptr ? "" : user,
			       rip == nullptr ? "" : rip,
			       session == nullptr ? "" : ", session=<",
			       session == nullptr ? "" : session,
			       session == nullptr ? "" : ">");
}

struct event *own_event_create(struct client *client)
{
	struct event *event = event_create(nullptr);
	event_add_category(event, &login_binary->event_category);
	event_add_str(event, "local_ip", net_ip2addr(&client->local_ip));
	event_add_int(event, "local_port", client->local_port);
	event_add_str(event, "remote_ip", net_ip2addr(&client->ip));
	event_add_int(event, "remote_port", client->remote_port);
	event_add_str(event, "service", login_binary->protocol);
	event_set_append_log_prefix(event, "rawlog_ext_login: ");
	// Not the macro: its type check is C only.
	(event_set_log_message_callback)(event, own_log_message, event);
	return event;
}

// While the client is intact: what may have changed (the session id
// with a trusted proxy's ID, the user with a login attempt).
void own_event_update(struct client *client, struct event *event)
{
	event_add_str(event, "session", client_get_session_id(client));
	if (client->virtual_user != nullptr)
		event_add_str(event, "user", client->virtual_user);
}

// A file name's parts for client's session; peer names a backend leg's
// far end.
NameParts name_parts(struct client *client, const std::string &peer)
{
	NameParts parts;
	parts.time = ioloop_time;
	parts.service = login_binary->process_name;
	if (!peer.empty())
		parts.service += "-proxy";
	parts.session = client_get_session_id(client);
	parts.pid = getpid();
	parts.hostname = my_hostname;
	parts.peer = peer;
	if (config->settings.ip_in_name)
		parts.ip = net_ip2addr(&client->ip);
	return parts;
}

// A new file (pair) in subdir of the base directory ("" = the base
// itself).
std::unique_ptr<Sink> open_named(const NameParts &parts,
				 const std::string &subdir,
				 const Settings &file_settings,
				 struct event *event)
{
	// Users' subdirectories are ours to create: being selected, not the
	// directory's existence, says whether a user is logged.
	Settings settings = file_settings;
	settings.autocreate = true;
	std::unique_ptr<Sink> sink;
	std::string message;
	OpenResult result = Sink::open_in(base_fd, config->settings.dir, subdir,
					  settings, parts, sink, message);
	return sink_opened(result, std::move(sink), message, event);
}

const Settings &file_settings(const LoginClientContext *ctx)
{
	return ctx->file_settings != nullptr ? *ctx->file_settings :
		config->settings;
}

std::unique_ptr<Sink> open_file(struct client *client,
				LoginClientContext *ctx,
				const std::string &subdir,
				const std::string &peer = "")
{
	return open_named(name_parts(client, peer), subdir,
			  file_settings(ctx), ctx->event);
}

// Writes what log held, and everything from now on, to a new file
// (pair) in subdir of the base directory ("" = the base itself).
void start_named(SessionLog *log, const NameParts &parts,
		 const std::string &subdir, const Settings &settings,
		 struct event *event)
{
	// Stopped by a failure of ours: no new file with a gap in it.
	if (log->failed())
		return;
	std::unique_ptr<Sink> sink = open_named(parts, subdir, settings, event);
	if (sink != nullptr) {
		if (log->held_dropped() > 0) {
			e_warning(event, "%llu bytes before the log's start "
				  "was known did not fit RAWLOG_EXT_LOGIN_HOLD "
				  "and are not in the log", (unsigned long long)
				  log->held_dropped());
		}
		log->attach_sink(std::move(sink));
		return;
	}
	log->drop();
}

void start_file(struct client *client, LoginClientContext *ctx,
		const std::string &subdir)
{
	start_named(ctx->log, name_parts(client, ""), subdir,
		    file_settings(ctx), ctx->event);
}

// Adds a file's bytes to the user's used/ counter when its Sink goes.
class LoginAccounting final : public SessionAccounting {
public:
	LoginAccounting(std::string user, struct event *event)
		: user_(std::move(user)), event_(event)
	{ event_ref(event_); }
	~LoginAccounting() override { event_unref(&event_); }

	void add(uint64_t bytes) noexcept override
	{
		(void)guard(event_, "counting the log's bytes", [&] {
			login_control_add(user_, bytes, event_);
		});
	}

private:
	std::string user_;
	struct event *event_;
};

// A login whose user the control dict is being asked about. The
// session's logs hold their bytes until the answer, which may come after
// the client is gone (a proxied session lives on in its streams).
struct Pending {
	unsigned int refcount = 2;	// the lookup's and the context's
	LoginClientContext *ctx = nullptr;	// nullptr once the client is freed
	bool cancelled = false;		// another login of the session since
	bool answered = false;
	std::string user;
	std::string user_dir;
	struct event *event = nullptr;	// referenced
	SessionLog *client_log = nullptr;	// referenced until the answer
	NameParts client_parts;
	SessionLog *backend_leg = nullptr;	// referenced, held, if connected
	NameParts backend_parts;
};

void pending_unref(Pending **pending)
{
	Pending *p = *pending;
	*pending = nullptr;
	if (p == nullptr || --p->refcount > 0)
		return;
	SessionLog::unref(&p->client_log);
	SessionLog::unref(&p->backend_leg);
	event_unref(&p->event);
	delete p;
}

// The context lets go of its lookup (freed, or a new login decides).
void pending_detach(LoginClientContext *ctx, bool cancel)
{
	if (ctx->pending == nullptr)
		return;
	Pending *p = ctx->pending;
	p->ctx = nullptr;
	if (cancel && !p->answered) {
		// Its answer is about another user: the earlier backend leg's
		// held bytes are of no use any more.
		p->cancelled = true;
		if (p->backend_leg != nullptr)
			p->backend_leg->drop();
		SessionLog::unref(&p->backend_leg);
	}
	pending_unref(&ctx->pending);
}

void pending_answered(Pending *p, const LoginControlAnswer &answer)
{
	if (p->cancelled)
		return;
	if (!answer.ok) {
		warn_once(p->event, answer.error + ": logging only the "
			  "sessions RAWLOG_EXT_LOGIN_SELECT, _USERS, _NETWORKS "
			  "or the passdb field rawlog_ext=yes select");
	} else if (answer.state == ControlState::invalid) {
		warn_once(p->event, "control dict: " + answer.entry +
			  ": invalid entry: not logging");
	}
	if (!answer.ok || answer.state != ControlState::on) {
		if (answer.ok)
			e_debug(p->event, "control dict: %s: not logging",
				control_state_name(answer.state));
		p->client_log->drop();
		if (p->backend_leg != nullptr)
			p->backend_leg->drop();
		return;
	}
	Settings settings = config->settings;
	if (answer.left > 0 &&
	    (settings.max_size == 0 || answer.left <= settings.max_size)) {
		settings.max_size = answer.left;
		settings.max_size_is_budget = true;
	}
	settings.accounting = std::make_shared<LoginAccounting>(p->user,
								p->event);
	e_debug(p->event, "control dict: enabled%s", answer.left == 0 ? "" :
		t_strdup_printf(", %llu bytes of its budget left",
				(unsigned long long)answer.left));
	if (p->ctx != nullptr) {
		// For a backend leg still to come.
		p->ctx->file_settings = new Settings(settings);
		p->ctx->user_dir = new std::string(p->user_dir);
	}
	start_named(p->client_log, p->client_parts, p->user_dir, settings,
		    p->event);
	if (p->backend_leg != nullptr)
		start_named(p->backend_leg, p->backend_parts, p->user_dir,
			    settings, p->event);
}

// Asks the control dict whether user is enabled; until the answer the
// session's bytes stay held.
void ask_control(struct client *client, LoginClientContext *ctx,
		 const std::string &user)
{
	std::unique_ptr<Pending> made(new Pending());
	made->user = user;
	made->user_dir = login_user_dir(user);
	made->client_parts = name_parts(client, "");
	// Complete: from here on nothing throws until the lookup.
	Pending *p = made.release();
	p->ctx = ctx;
	p->event = ctx->event;
	event_ref(p->event);
	p->client_log = ctx->log;
	p->client_log->ref();
	ctx->pending = p;
	try {
		login_control_lookup(user, [p](const LoginControlAnswer &answer) {
			Pending *lookup_ref = p;
			// Also if what follows fails: no leg waits for it then.
			p->answered = true;
			if (!guard(p->event, "reading the control dict's answer",
				   [&] { pending_answered(p, answer); })) {
				p->client_log->abandon();
				if (p->backend_leg != nullptr)
					p->backend_leg->abandon();
			}
			// The logs wait for nothing any more.
			SessionLog::unref(&p->client_log);
			SessionLog::unref(&p->backend_leg);
			pending_unref(&lookup_ref);
		});
	} catch (...) {
		// No answer will come.
		Pending *lookup_ref = p;
		p->answered = true;
		pending_unref(&lookup_ref);
		throw;
	}
}

// On a successful login: the user is known, log or drop. Again if a later
// login (after the first one failed further on: anvil, master, backend)
// turns out to be another user's.
void decide(struct client *client, LoginClientContext *ctx,
	    const char *const *passdb_fields)
{
	const char *user = client->virtual_user != nullptr ?
		client->virtual_user : "";
	if (ctx->decided_user != nullptr && *ctx->decided_user == user)
		return;
	own_event_update(client, ctx->event);
	pending_detach(ctx, true);
	// The previous decision goes first: a failure below must not leave
	// another user's directory for the backend leg.
	delete ctx->decided_user;
	ctx->decided_user = nullptr;
	delete ctx->user_dir;
	ctx->user_dir = nullptr;
	delete ctx->file_settings;
	ctx->file_settings = nullptr;
	ctx->decided = true;
	if (!guard(ctx->event, "choosing the log", [&] {
		ctx->decided_user = new std::string(user);
		std::vector<std::string> fields;
		for (; passdb_fields != nullptr && *passdb_fields != nullptr;
		     passdb_fields++)
			fields.emplace_back(*passdb_fields);
		if (user[0] == '\0') {
			// No directory of its own (see login_user_dir()).
			e_warning(ctx->event, "empty user name: "
				  "not logging this session");
			ctx->log->drop();
		} else if (login_user_selected(*config, user,
					       net_ip2addr(&client->ip),
					       fields)) {
			ctx->user_dir = new std::string(login_user_dir(user));
			start_file(client, ctx, *ctx->user_dir);
		} else if (login_control_configured() &&
			   !login_user_deselected(fields)) {
			ask_control(client, ctx, user);
		} else {
			e_debug(ctx->event, "user %s not selected: not logging",
				user);
			ctx->log->drop();
		}
	}))
		ctx->log->abandon();
}

// A new backend connection: our filters on its streams, unless our log
// is stopped. Its input through a MultiplexTap (see there).
void wrap_backend(struct client *client, LoginClientContext *ctx,
		  const login_internals::ProxyBackend &backend)
{
	SessionLog *log = nullptr;
	MultiplexTap *tap = nullptr;
	// Until the control dict answers, the leg holds its bytes as the
	// client's log does.
	Pending *held = ctx->pending != nullptr && !ctx->pending->answered ?
		ctx->pending : nullptr;
	if (!ctx->log->failed() && (held != nullptr || ctx->user_dir != nullptr) &&
	    !guard(ctx->event, "opening the backend leg log", [&] {
		std::string peer = std::string(backend.host) + ":" +
			std::to_string(backend.port);
		std::unique_ptr<Sink> sink;
		if (held == nullptr) {
			sink = open_file(client, ctx, *ctx->user_dir, peer);
			if (sink == nullptr)
				return;
		}
		SessionLog *leg = new SessionLog(std::move(sink), ctx->event);
		if (held != nullptr) {
			try {
				leg->hold(config->hold_max, config->settings);
				NameParts parts = name_parts(client, peer);
				// A reconnect: the earlier connection's leg.
				if (held->backend_leg != nullptr)
					held->backend_leg->drop();
				SessionLog::unref(&held->backend_leg);
				held->backend_parts = parts;
			} catch (...) {
				SessionLog::unref(&leg);
				throw;
			}
			held->backend_leg = leg;
			leg->ref();
		}
		std::unique_ptr<MultiplexTap> owned_tap;
		try {
			// We are the backend's client here.
			if (config->settings.redact) {
				leg->set_redactor(std::make_unique<Redactor>(
					protocol), Direction::out);
			}
			owned_tap = std::make_unique<MultiplexTap>(leg);
		} catch (...) {
			SessionLog::unref(&leg);
			throw;
		}
		tap = owned_tap.get();
		log = new SessionLog(nullptr, ctx->event, std::move(owned_tap));
	}))
		SessionLog::unref(&log);
	if (log != nullptr) {
		struct istream *input =
			istream_create_logging(*backend.input, log);
		i_stream_unref(backend.input);
		*backend.input = input;
		struct ostream *output =
			ostream_create_logging(*backend.output, log);
		o_stream_unref(backend.output);
		*backend.output = output;
		SessionLog::unref(&log);
	} else {
		tap = nullptr;
	}
	// Also when not logged: wrap only once per connection.
	i_stream_unref(&ctx->backend_input);
	ctx->backend_input = *backend.input;
	i_stream_ref(ctx->backend_input);
	ctx->backend_tap = tap;
}

// proxy_backend(), and if it refuses (e.g. 2.4.2+'s login_proxy_rawlog_dir,
// whose streams appear with the connection) one Warning per session.
bool backend_of(struct client *client, LoginClientContext *ctx,
		login_internals::ProxyBackend &backend_r)
{
	const char *why;
	if (login_internals::proxy_backend(client, backend_r, why))
		return true;
	if (!ctx->backend_refused) {
		ctx->backend_refused = true;
		e_warning(ctx->event, "%s: not logging the backend leg", why);
	}
	return false;
}

// The proxy calls this whenever the backend has sent something: before
// the first call nothing was exchanged yet (the protocol waits for the
// backend's greeting), so our filters go on the backend streams then.
void login_proxy_input(struct client *client)
{
	LoginClientContext *ctx = context_of(client);
	login_internals::ProxyBackend backend;
	// A multiplexing backend's input is a demultiplexer above ours.
	if (backend_of(client, ctx, backend) &&
	    backend.multiplex_orig_input == nullptr &&
	    *backend.input != ctx->backend_input)
		wrap_backend(client, ctx, backend);
	// The callback may end the session (a backend failure, the proxy
	// finished): client_destroy(), and with the last reference v.free,
	// which frees ctx. Ours keeps both until we are done.
	client_ref(client);
	ctx->proxy_input_callback(client);
	// The backend may have started multiplexing just now. If Dovecot
	// demultiplexes our stream and the tap did not see it start, the
	// tap would log the framing.
	if (!client->destroyed && client->login_proxy != nullptr &&
	    ctx->backend_tap != nullptr && !ctx->backend_tap->stopped() &&
	    backend_of(client, ctx, backend) &&
	    backend.multiplex_orig_input == ctx->backend_input &&
	    !ctx->backend_tap->multiplexing()) {
		ctx->backend_tap->stop();
		e_warning(ctx->event, "the backend multiplexes in a way not "
			  "understood: not logging the rest of the backend leg");
	}
	client_unref(&client);
}

void watch_backend(struct client *client, LoginClientContext *ctx)
{
	login_internals::ProxyBackend backend;
	const char *why;
	if (!login_internals::proxy_backend(client, backend, why)) {
		e_warning(ctx->event, "%s: not logging the backend leg", why);
		return;
	}
	if (login_internals::proxy_uses_starttls(client)) {
		// TLS would go on top of our filters mid-way.
		e_warning(ctx->event, "not logging the backend leg: "
			  "STARTTLS to the backend is not supported");
		return;
	}
	ctx->proxy_input_callback = *backend.input_callback;
	*backend.input_callback = login_proxy_input;
}

// The login succeeded for good: handed to the post-login process, or
// proxied (the backend is not connected yet).
void login_auth_result(struct client *client, enum client_auth_result result,
		       const struct client_auth_reply *reply, const char *text)
{
	LoginClientContext *ctx = context_of(client);
	if (result == CLIENT_AUTH_RESULT_SUCCESS) {
		// A local login's reply no longer has the passdb fields.
		decide(client, ctx, reply != nullptr &&
		       reply->all_fields != nullptr ? reply->all_fields :
		       client->auth_passdb_args);
		// A session whose log a failure stopped gets no backend leg.
		if (client->login_proxy != nullptr && !ctx->log->failed() &&
		    (ctx->user_dir != nullptr || (ctx->pending != nullptr &&
						  !ctx->pending->answered)))
			watch_backend(client, ctx);
	}
	if (ctx->module_ctx.super.auth_result != nullptr)
		ctx->module_ctx.super.auth_result(client, result, reply, text);
}

// 2.3's imap-login, pop3-login: TLS now sits on top of our filters; go
// above it before the protocol reads again (imap-login recreates its
// parser).
void login_starttls(struct client *client)
{
	LoginClientContext *ctx = context_of(client);
	ctx->client_log->sync();
	if (ctx->module_ctx.super.starttls != nullptr)
		ctx->module_ctx.super.starttls(client);
}

// 2.4: after TLS (STARTTLS, all three services), multiplex start or stop,
// and a proxy's COMPRESS (then the proxy lends the client its streams
// for the call): our filters go above what was stacked on them.
void login_iostream_change_post(struct client *client)
{
	LoginClientContext *ctx = context_of(client);
	login_internals::call_iostream_change_post(&ctx->module_ctx.super,
						   client);
	// After v.free (a proxy's COMPRESS may come that late): not ours.
	if (ctx->client_log == nullptr || ctx->streams_refused)
		return;
	if (login_internals::client_output_multiplexed(client)) {
		// Above the multiplex ostream we would trip the handoff's
		// assert; below it we would log the framing.
		ctx->streams_refused = true;
		e_warning(ctx->event, "not logging this session: its output "
			  "is multiplexed (x-multiplex, asked for by a trusted "
			  "proxy in front, which can log the session itself)");
		ctx->log->abandon();
		return;
	}
	ctx->client_log->sync();
}

// 2.3's submission-login: STARTTLS goes through lib-smtp, which asks for
// the TLS streams through this callback (v.starttls is never called).
int login_smtp_start_tls(void *conn_ctx, struct istream **input_r,
			 struct ostream **output_r)
{
	auto *client = static_cast<struct client *>(conn_ctx);
	LoginClientContext *ctx = context_of(client);
	int ret = smtp_start_tls(conn_ctx, input_r, output_r);
	if (ret < 0 || *input_r != client->input ||
	    *output_r != client->output)
		return ret;
	ctx->client_log->sync();
	*input_r = client->input;
	*output_r = client->output;
	return ret;
}

const struct client_vfuncs *login_super(struct client *client)
{
	return &context_of(client)->module_ctx.super;
}

// After the protocol's create: 2.3's submission-login connection exists.
void login_created(struct client *client)
{
	LoginClientContext *ctx = context_of(client);
	if (ctx->hooked_iostream_change ||
	    strcmp(login_binary->protocol, "submission") != 0)
		return;
	const char *why;
	login_internals::submission_start_tls_t *theirs;
	if (!login_internals::submission_hook_start_tls(
		client, login_smtp_start_tls, &theirs, why)) {
		e_warning(ctx->event, "%s: after STARTTLS this session is "
			  "not logged", why);
		return;
	}
	smtp_start_tls = theirs;
}

void login_destroy(struct client *client)
{
	LoginClientContext *ctx = context_of(client);
	if (!ctx->decided) {
		// Never logged in (or failed to). The client is torn down
		// already (no TLS any more): only its plain fields are read.
		ctx->decided = true;
		own_event_update(client, ctx->event);
		if (!guard(ctx->event, "writing the log of a session that did "
			   "not log in", [&] {
			if (config->select == LoginSelect::all)
				start_file(client, ctx, "");
			else
				ctx->log->drop();
		}))
			ctx->log->abandon();
	}
	if (ctx->module_ctx.super.destroy != nullptr)
		ctx->module_ctx.super.destroy(client);
}

void login_free(struct client *client)
{
	LoginClientContext *ctx = context_of(client);
	void (*super_free)(struct client *) = ctx->module_ctx.super.free;
	// The streams may live on (a proxied session's are the proxy's now):
	// they keep the log; we only let go of ours.
	ctx->client_log->begin_destroy();
	delete ctx->client_log;
	ctx->client_log = nullptr;
	SessionLog::unref(&ctx->log);
	event_unref(&ctx->event);
	i_stream_unref(&ctx->backend_input);
	pending_detach(ctx, false);
	delete ctx->user_dir;
	ctx->user_dir = nullptr;
	delete ctx->file_settings;
	ctx->file_settings = nullptr;
	delete ctx->decided_user;
	ctx->decided_user = nullptr;
	if (super_free != nullptr)
		super_free(client);
}

void login_client_allocated(struct client *client)
{
	struct event *event = own_event_create(client);
	SessionLog *log = nullptr;
	bool ok = guard(event, "opening the pre-login log", [&] {
		log = new SessionLog(nullptr, event);
		log->hold(config->hold_max, config->settings);
		if (config->settings.redact) {
			log->set_redactor(std::make_unique<Redactor>(protocol),
					  Direction::in);
		}
	});
	// Ours, besides the one the ClientLog takes over.
	if (ok)
		log->ref();
	ClientLog *client_log = !ok ? nullptr :
		client_log_create(log, &client->input, &client->output,
				  nullptr, nullptr);
	if (client_log == nullptr) {
		// Not logged; the session goes on as if we were not there.
		// (After a failed guard: the half-made log, if any.)
		SessionLog::unref(&log);
		event_unref(&event);
		return;
	}
	auto *ctx = p_new(client->pool, LoginClientContext, 1);
	ctx->event = event;
	ctx->log = log;
	ctx->client_log = client_log;

	struct client_vfuncs *v = client->vlast;
	ctx->module_ctx.super = *v;
	client->vlast = &ctx->module_ctx.super;
	login_internals::hook_create(v, login_super, login_created);
	ctx->hooked_iostream_change = login_internals::hook_iostream_change(
		v, login_iostream_change_post);
	if (!ctx->hooked_iostream_change)
		v->starttls = login_starttls;
	v->auth_result = login_auth_result;
	v->destroy = login_destroy;
	v->free = login_free;
	MODULE_CONTEXT_SET_SELF(client, login_client_module, &ctx->module_ctx);
}

struct login_client_hooks client_hooks = { login_client_allocated };

// A log directory outside the login chroot would be a way out of it for
// a compromised login process (fchdir() to our fd, then ".."). Refused
// unless the admin accepts that explicitly. Checked on the opened fd, by
// inode: symlinks or ".." in RAWLOG_EXT_LOGIN_DIR (or in the chroot's own
// path) cannot fool it, and a bind mount below the chroot, the documented
// way in, passes because ".." from a mount's root leads to its mount point.
bool check_chroot(int fd, const std::string &dir, const Getenv &settings)
{
	// Dovecot's own, for the process it execs.
	const char *chroot_dir = getenv("RESTRICT_CHROOT");
	if (chroot_dir == nullptr || chroot_dir[0] == '\0')
		return true;
	const char *allow = settings("RAWLOG_EXT_LOGIN_OUTSIDE_CHROOT");
	bool allowed = false;
	if (allow != nullptr && allow[0] != '\0' &&
	    !parse_bool(allow, allowed)) {
		i_error("rawlog_ext_login: Invalid setting "
			"RAWLOG_EXT_LOGIN_OUTSIDE_CHROOT=%s: expected yes or no: "
			"not logging", allow);
		return false;
	}
	if (allowed)
		return true;
	struct stat root;
	int ret = stat(chroot_dir, &root);
	if (ret == 0 && !S_ISDIR(root.st_mode)) {
		errno = ENOTDIR;
		ret = -1;
	}
	if (ret < 0) {
		i_error("rawlog_ext_login: stat(%s) failed: %m: not logging",
			chroot_dir);
		return false;
	}
	ret = dir_within(fd, root);
	if (ret < 0) {
		i_error("rawlog_ext_login: RAWLOG_EXT_LOGIN_DIR=%s: looking up "
			"its parent directories failed: %m: not logging",
			dir.c_str());
		return false;
	}
	if (ret > 0)
		return true;
	i_error("rawlog_ext_login: RAWLOG_EXT_LOGIN_DIR=%s is outside the "
		"login chroot %s; an open directory there would let a "
		"compromised login process leave its chroot: not logging (put "
		"it below the chroot, e.g. with a bind mount, or set "
		"RAWLOG_EXT_LOGIN_OUTSIDE_CHROOT=yes to accept that)",
		dir.c_str(), chroot_dir);
	return false;
}

bool init_config()
{
	if (strcmp(login_binary->protocol, "imap") == 0)
		protocol = RedactProtocol::imap;
	else if (strcmp(login_binary->protocol, "pop3") == 0)
		protocol = RedactProtocol::pop3;
	else if (strcmp(login_binary->protocol, "submission") == 0)
		protocol = RedactProtocol::smtp;
	else {
		// Its credentials would not be recognised (managesieve,
		// imap-urlauth): never log them in clear.
		i_info("rawlog_ext_login: %s is not supported: not logging",
		       login_binary->process_name);
		return false;
	}
	config = new LoginConfig();
	std::string error;
	Getenv settings;
	if (!login_internals::login_settings_read(settings, error)) {
		i_error("rawlog_ext_login: %s: not logging", error.c_str());
		return false;
	}
	if (!login_config_parse(settings, *config, error)) {
		i_error("rawlog_ext_login: %s: not logging", error.c_str());
		return false;
	}
	if (config->settings.dir.empty())
		return false;
	if (!check_dir_path(config->settings.dir, error)) {
		i_error("rawlog_ext_login: RAWLOG_EXT_LOGIN_DIR: %s: "
			"not logging", error.c_str());
		return false;
	}
	// As root, before the chroot: later only this fd leads there. Not
	// created here: it must belong to the login user, not to root.
	int fd = open_log_dir(config->settings.dir, false);
	if (fd == -1) {
		i_error("rawlog_ext_login: open(%s) failed: %m: not logging",
			config->settings.dir.c_str());
		return false;
	}
	if (!check_chroot(fd, config->settings.dir, settings)) {
		(void)close(fd);
		return false;
	}
	// Not fatal: without it only the selection above logs, as when the
	// dict cannot be reached.
	if (login_control_init(*config, error) < 0)
		i_error("rawlog_ext_login: %s: the control dict is not used",
			error.c_str());
	// Also as root before the chroot: the module (and libcrypto) are
	// not reachable from inside it.
	if (!config->settings.seal_recipients.empty() &&
	    !seal_module_load(error)) {
		i_error("rawlog_ext_login: RAWLOG_EXT_LOGIN_SEAL_RECIPIENTS: "
			"%s: not logging (never in clear instead)",
			error.c_str());
		(void)close(fd);
		return false;
	}
	base_fd = fd;
	return true;
}

} // namespace

} // namespace rawlog_ext

extern "C" {

#define RAWLOG_EXT_EXPORT __attribute__((visibility("default")))

RAWLOG_EXT_EXPORT extern const char *rawlog_ext_login_plugin_version;
RAWLOG_EXT_EXPORT void rawlog_ext_login_plugin_init(struct module *module);
RAWLOG_EXT_EXPORT void rawlog_ext_login_plugin_deinit(void);

const char *rawlog_ext_login_plugin_version = DOVECOT_ABI_VERSION;

void rawlog_ext_login_plugin_init(struct module *module)
{
	using namespace rawlog_ext;
	login_module = module;
	bool configured = false;
	struct event *event = event_create(nullptr);
	event_set_append_log_prefix(event, "rawlog_ext_login: ");
	(void)guard(event, "reading the settings", [&] {
		configured = init_config();
	});
	event_unref(&event);
	// Everything is in config now.
	login_internals::login_settings_free();
	if (configured)
		login_client_hooks_add(module, &client_hooks);
}

void rawlog_ext_login_plugin_deinit(void)
{
	using namespace rawlog_ext;
	// First: answers still on their way (a local login's process ends
	// right after the handoff) open files through base_fd.
	login_control_deinit();
	if (base_fd != -1) {
		login_client_hooks_remove(&client_hooks);
		(void)close(base_fd);
		base_fd = -1;
	}
	delete config;
	config = nullptr;
	login_module = nullptr;
}

}
