// What the login companion needs from a login process beyond its public
// API: login-proxy.c's private struct login_proxy (the backend streams and
// the input callback: there is no hook for the backend connection),
// submission-login's private client struct (2.3: its smtp-server
// connection, for STARTTLS), and the client vfuncs that differ between
// Dovecot lines. One implementation per line, in internals-2.3/ and
// internals-2.4/; nothing else knows a private layout. Every accessor
// checks what it finds against the public API and returns false (with
// why_r) instead of guessing; the caller logs one "not logging X" line.
//
// Include after compat.hh and the login headers (login-common.h,
// client-common.h, login-proxy.h).
#ifndef RAWLOG_EXT_LOGIN_INTERNALS_HH
#define RAWLOG_EXT_LOGIN_INTERNALS_HH

#include "../core/settings.hh"

#include <string>

struct dict;

namespace rawlog_ext {
namespace login_internals {

// Where the companion's settings come from, read once at plugin init (as
// root, before the chroot). 2.3: the environment (import_environment),
// as login processes get no plugin {} settings. 2.4: login processes read
// the whole configuration, so also the rawlog_ext_login_<name> settings
// (protocol filters included) once lib90_rawlog_ext_login_settings is in
// Dovecot's settings module directory; each one set there to a non-empty
// value wins over its RAWLOG_EXT_LOGIN_<NAME> variable (empty, the
// default, counts as not set: the variable, if any, then applies; such a
// variable cannot be emptied from there). Read once, without %variables.
// getenv_r maps a variable name to its value; valid until
// login_settings_free().
bool login_settings_read(Getenv &getenv_r, std::string &error_r);
void login_settings_free();

// $base_dir, as the process knew it before its chroot.
const char *base_dir();
// The control dict through the dict proxy: a client of the dict service
// listening at socket (a path as the process will see it, chroot and
// all), for the dict it names name. Connects at the first lookup. 2.3: the
// proxy: URI; 2.4: a dict_proxy from settings overrides of our own.
bool control_dict_open(const std::string &socket, const std::string &name,
		       struct event *event, struct dict **dict_r,
		       std::string &error_r);
// Closes it (nothing pending any more) and what it took.
void control_dict_close(struct dict **dict);

// The proxy's own fields, valid while the proxy lives; find them again
// (proxy_backend()) at each use rather than keep them.
struct ProxyBackend {
	struct istream **input;		// what login_proxy_get_server_istream() returns
	struct ostream **output;
	login_proxy_input_callback_t **input_callback;
	// The backend's input below a multiplex istream, if the backend
	// multiplexes (2.4, x-multiplex), else nullptr.
	struct istream *multiplex_orig_input;
	const char *host;
	in_port_t port;
};

// client->login_proxy's fields. False if the layout is not the one this
// build knows (checked against login_proxy_get_*()), or if another module
// of Dovecot sits where our filters would go (2.4.2+: login_proxy_rawlog_dir,
// whose deinit asserts that its streams are the outermost).
bool proxy_backend(struct client *client, ProxyBackend &backend_r,
		   const char *&why_r);

// Whether client->login_proxy starts TLS on the backend connection after
// the greeting (STARTTLS): TLS would go on top of our filters mid-way.
bool proxy_uses_starttls(struct client *client);

// Whether this line calls iostream_change_pre/post around every change of
// the client's streams (2.4: STARTTLS in all three services, multiplex,
// a proxy's COMPRESS). If so, install post as v->iostream_change_post
// (super keeps the previous one, see call_iostream_change_post()) and
// nothing else is needed for STARTTLS; if not (2.3), nothing is installed.
bool hook_iostream_change(struct client_vfuncs *v,
			  void (*post)(struct client *client));
void call_iostream_change_post(const struct client_vfuncs *super,
			       struct client *client);

// Whether the client's output is multiplexed now (2.4: a trusted 2.4
// proxy in front asked for x-multiplex): our filters cannot be the
// outermost output then (the handoff asserts that the multiplex ostream
// is), and below it they would see the framing.
bool client_output_multiplexed(struct client *client);

// The create vfunc differs (2.3: void, with other_sets; 2.4: int). Install
// ours: it runs the previous one (super_of(client)->create) and then
// created(client) unless that failed. One companion per process: the two
// functions are kept process-wide.
void hook_create(struct client_vfuncs *v,
		 const struct client_vfuncs *(*super_of)(struct client *client),
		 void (*created)(struct client *client));

// submission-login on 2.3: lib-smtp asks its connection's conn_start_tls
// callback for the TLS streams at STARTTLS (v.starttls is never called
// there). Makes ours run instead; it must call *theirs_r. Only from within
// created() (the private layout is checked against the create call's
// arguments). False on 2.4, where hook_iostream_change() covers it.
typedef int submission_start_tls_t(void *conn_ctx, struct istream **input_r,
				   struct ostream **output_r);
bool submission_hook_start_tls(struct client *client,
			       submission_start_tls_t *ours,
			       submission_start_tls_t **theirs_r,
			       const char *&why_r);

} // namespace login_internals
} // namespace rawlog_ext

#endif
