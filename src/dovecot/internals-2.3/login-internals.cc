// Login process internals, Dovecot 2.3 (layouts read in 2.3.19.1).
#include "../compat.hh"

DOVECOT_EXTERN_C_BEGIN
#include "login-common.h"
#include "client-common.h"
#include "login-proxy.h"
#include "master-service.h"
#include "master-service-settings.h"
#include "dict.h"
#include "smtp-server.h"
#include "smtp-server-private.h"
DOVECOT_EXTERN_C_END

#include "../login-internals.hh"

#include <cctype>
#include <cstdlib>
#include <cstring>

namespace rawlog_ext {
namespace login_internals {

namespace {

// The head of login-proxy.c's private struct login_proxy (the same in
// 2.3.17 to 2.3.21.1).
struct LoginProxyHead {
	struct login_proxy *prev, *next;
	struct client *client;
	struct event *event;
	int server_fd;
	struct io *client_wait_io, *server_io;
	struct istream *client_input, *server_input;
	struct ostream *client_output, *server_output;
	struct iostream_proxy *iostream_proxy;
	struct ssl_iostream *server_ssl_iostream;
	struct timeval created;
	struct timeout *to, *to_notify;
	struct login_proxy_record *state_rec;
	struct ip_addr ip, source_ip;
	char *host;
	in_port_t port;
	unsigned int connect_timeout_msecs;
	unsigned int notify_refresh_secs;
	unsigned int host_immediate_failure_after_secs;
	unsigned int reconnect_count;
	enum login_proxy_ssl_flags ssl_flags;
	char *rawlog_dir;
	login_proxy_input_callback_t *input_callback;
	login_proxy_failure_callback_t *failure_callback;
};

// Whether the Dovecot running (libdovecot's version, not the headers')
// is one whose login-proxy.c has the layout above: nothing public pins
// input_callback down.
bool proxy_layout_known(const char *&version_r)
{
	// NULL with version_ignore=yes: then the version built against.
	const char *version = master_service_get_version_string(master_service);
	version_r = version != nullptr ? version : DOVECOT_VERSION;
	if (strncmp(version_r, "2.3.", 4) != 0 ||
	    !isdigit((unsigned char)version_r[4]))
		return false;
	char *end;
	unsigned long micro = strtoul(version_r + 4, &end, 10);
	return !isdigit((unsigned char)*end) && micro >= 17 && micro <= 21;
}

// The head of submission-login's private struct submission_client.
struct SubmissionClientHead {
	struct client common;
	const void *set;		// other_sets[0] of the create call
	enum smtp_capability backend_capabilities;
	struct smtp_server_connection *conn;
};

const struct client_vfuncs *(*super_of_fn)(struct client *client);
void (*created_fn)(struct client *client);
// The create call being run (for submission_hook_start_tls()).
struct client *creating_client;
void **creating_other_sets;

void create(struct client *client, void **other_sets)
{
	const struct client_vfuncs *super = super_of_fn(client);
	if (super->create != nullptr)
		super->create(client, other_sets);
	creating_client = client;
	creating_other_sets = other_sets;
	created_fn(client);
	creating_client = nullptr;
	creating_other_sets = nullptr;
}

// submission-login's smtp-server callbacks (one static table for every
// client) and our copy. Process-wide, so a connection that outlives its
// client never points into freed memory.
const struct smtp_server_callbacks *smtp_callbacks;
struct smtp_server_callbacks our_smtp_callbacks;

} // namespace

bool login_settings_read(Getenv &getenv_r, std::string &)
{
	getenv_r = [](const char *name) { return getenv(name); };
	return true;
}

void login_settings_free()
{
}

bool proxy_backend(struct client *client, ProxyBackend &backend_r,
		   const char *&why_r)
{
	const char *version;
	if (!proxy_layout_known(version)) {
		why_r = t_strdup_printf("the login proxy layout of Dovecot %s "
					"is not known", version);
		return false;
	}
	struct login_proxy *proxy = client->login_proxy;
	auto *head = reinterpret_cast<LoginProxyHead *>(proxy);
	// Every field compared is inside the real struct if the layout
	// holds; pointers are compared, not followed.
	if (head->client != client ||
	    head->event != login_proxy_get_event(proxy) ||
	    head->host != login_proxy_get_host(proxy) ||
	    head->port != login_proxy_get_port(proxy) ||
	    head->ssl_flags != login_proxy_get_ssl_flags(proxy) ||
	    head->server_input != login_proxy_get_istream(proxy) ||
	    head->server_output != login_proxy_get_ostream(proxy) ||
	    head->input_callback == nullptr) {
		why_r = "unexpected login proxy layout";
		return false;
	}
	backend_r.input = &head->server_input;
	backend_r.output = &head->server_output;
	backend_r.input_callback = &head->input_callback;
	backend_r.multiplex_orig_input = nullptr;
	backend_r.host = head->host;
	backend_r.port = head->port;
	return true;
}

bool proxy_uses_starttls(struct client *client)
{
	return (login_proxy_get_ssl_flags(client->login_proxy) &
		PROXY_SSL_FLAG_STARTTLS) != 0;
}

bool hook_iostream_change(struct client_vfuncs *, void (*)(struct client *))
{
	return false;
}

void call_iostream_change_post(const struct client_vfuncs *, struct client *)
{
}

bool client_output_multiplexed(struct client *)
{
	return false;
}

void hook_create(struct client_vfuncs *v,
		 const struct client_vfuncs *(*super_of)(struct client *client),
		 void (*created)(struct client *client))
{
	super_of_fn = super_of;
	created_fn = created;
	v->create = create;
}

bool submission_hook_start_tls(struct client *client,
			       submission_start_tls_t *ours,
			       submission_start_tls_t **theirs_r,
			       const char *&why_r)
{
	why_r = "unexpected submission-login layout";
	if (client != creating_client || creating_other_sets == nullptr ||
	    creating_other_sets[0] == nullptr)
		return false;
	auto *head = reinterpret_cast<SubmissionClientHead *>(client);
	// The settings pointer the create call stored there says the layout
	// holds before the connection pointer is followed.
	if (head->set != creating_other_sets[0])
		return false;
	struct smtp_server_connection *conn = head->conn;
	if (conn == nullptr ||
	    smtp_server_connection_get_context(conn) != client ||
	    conn->callbacks == nullptr ||
	    conn->callbacks->conn_start_tls == nullptr ||
	    (smtp_callbacks != nullptr && conn->callbacks != smtp_callbacks &&
	     conn->callbacks != &our_smtp_callbacks))
		return false;
	if (smtp_callbacks == nullptr) {
		smtp_callbacks = conn->callbacks;
		our_smtp_callbacks = *conn->callbacks;
		our_smtp_callbacks.conn_start_tls = ours;
	}
	conn->callbacks = &our_smtp_callbacks;
	*theirs_r = smtp_callbacks->conn_start_tls;
	return true;
}

const char *base_dir()
{
	return master_service_settings_get(master_service)->base_dir;
}

bool control_dict_open(const std::string &socket, const std::string &name,
		       struct event *event, struct dict **dict_r,
		       std::string &error_r)
{
	struct dict_settings set;
	i_zero(&set);
	set.base_dir = base_dir();
	set.event_parent = event;
	const char *error;
	std::string uri = "proxy:" + socket + ":" + name;
	if (dict_init(uri.c_str(), &set, dict_r, &error) < 0) {
		error_r = std::string("dict_init(") + uri + ") failed: " + error;
		return false;
	}
	return true;
}

void control_dict_close(struct dict **dict)
{
	dict_deinit(dict);
}

} // namespace login_internals
} // namespace rawlog_ext
