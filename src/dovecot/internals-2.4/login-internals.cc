// Login process internals, Dovecot 2.4 (layouts read in 2.4.0-2.4.4).
#include "../compat.hh"

DOVECOT_EXTERN_C_BEGIN
#include "login-common.h"
#include "client-common.h"
#include "login-proxy.h"
#include "master-service.h"
#include "settings.h"
#include "login-settings-info.h"
DOVECOT_EXTERN_C_END

#include "../login-internals.hh"

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace rawlog_ext {
namespace login_internals {

namespace {

// The head of login-proxy.c's private struct login_proxy: 2.4.0 and
// 2.4.1 ...
struct LoginProxyHead240 {
	struct login_proxy *prev, *next;
	struct login_proxy *user_prev, *user_next;
	struct client *client;
	struct event *event;
	int server_fd;
	struct io *client_wait_io, *server_io, *side_channel_io;
	struct istream *client_input, *server_input;
	struct ostream *client_output, *server_output;
	struct istream *multiplex_input, *multiplex_orig_input;
	struct istream *side_channel_input;
	struct iostream_proxy *iostream_proxy;
	struct ssl_iostream *server_ssl_iostream;
	guid_128_t anvil_conn_guid;
	uoff_t client_output_orig_offset;
	struct timeval created;
	struct timeout *to, *to_notify;
	struct login_proxy_record *state_rec;
	struct ip_addr ip, source_ip;
	char *host;
	in_port_t port;
	ARRAY(struct login_proxy_redirect) redirect_path;
	unsigned int connect_timeout_msecs;
	unsigned int notify_refresh_secs;
	unsigned int host_immediate_failure_after_secs;
	unsigned int reconnect_count;
	enum auth_proxy_ssl_flags ssl_flags;
	char *rawlog_dir;
	login_proxy_input_callback_t *input_callback;
};

// ... and 2.4.2 to 2.4.4 (e0f354cb13 added the rawlog streams).
struct LoginProxyHead242 {
	struct login_proxy *prev, *next;
	struct login_proxy *user_prev, *user_next;
	struct client *client;
	struct event *event;
	int server_fd;
	struct io *client_wait_io, *server_io, *side_channel_io;
	struct istream *client_input, *server_input;
	struct ostream *client_output, *server_output;
	struct istream *pre_rawlog_input, *rawlog_input;
	struct ostream *pre_rawlog_output, *rawlog_output;
	struct istream *multiplex_input, *multiplex_orig_input;
	struct istream *side_channel_input;
	struct iostream_proxy *iostream_proxy;
	struct ssl_iostream *server_ssl_iostream;
	guid_128_t anvil_conn_guid;
	uoff_t client_output_orig_offset;
	struct timeval created;
	struct timeout *to, *to_notify;
	struct login_proxy_record *state_rec;
	struct ip_addr ip, source_ip;
	char *host;
	in_port_t port;
	ARRAY(struct login_proxy_redirect) redirect_path;
	unsigned int connect_timeout_msecs;
	unsigned int notify_refresh_secs;
	unsigned int host_immediate_failure_after_secs;
	unsigned int reconnect_count;
	enum auth_proxy_ssl_flags ssl_flags;
	char *rawlog_dir;
	login_proxy_input_callback_t *input_callback;
};

// The layout of the headers this is built against. The check below tells
// the two apart at runtime (source_ip moved by 32 bytes), so a build used
// with the other layout refuses instead of guessing.
using LoginProxyHead = std::conditional_t<(DOVECOT_VERSION_MICRO >= 2),
					  LoginProxyHead242, LoginProxyHead240>;

[[maybe_unused]]
bool rawlog_streams_active(const LoginProxyHead240 *, const char *&)
{
	return false;
}

[[maybe_unused]]
bool rawlog_streams_active(const LoginProxyHead242 *head, const char *&why_r)
{
	if (head->rawlog_input == nullptr && head->rawlog_output == nullptr)
		return false;
	// proxy_rawlog_deinit() asserts its streams are the outermost.
	why_r = "login_proxy_rawlog_dir is set";
	return true;
}

const struct client_vfuncs *(*super_of_fn)(struct client *client);
void (*created_fn)(struct client *client);

int create(struct client *client)
{
	const struct client_vfuncs *super = super_of_fn(client);
	int ret = super->create == nullptr ? 0 : super->create(client);
	if (ret >= 0)
		created_fn(client);
	return ret;
}

const struct rawlog_ext_login_settings *login_set;

// RAWLOG_EXT_LOGIN_DIR -> login_set's rawlog_ext_login_dir, if set there.
const char *login_setting(const char *env_name)
{
	std::string key;
	for (const char *p = env_name; *p != '\0'; p++)
		key += (char)tolower((unsigned char)*p);
	const struct setting_parser_info &info =
		rawlog_ext_login_setting_parser_info;
	for (const struct setting_define *def = info.defines;
	     def->key != nullptr; def++) {
		if (key == def->key) {
			const char *value =
				*reinterpret_cast<const char *const *>(
					reinterpret_cast<const char *>(
						login_set) + def->offset);
			return value[0] == '\0' ? nullptr : value;
		}
	}
	return nullptr;
}

} // namespace

bool login_settings_read(Getenv &getenv_r, std::string &error_r)
{
	const struct rawlog_ext_login_settings *set = nullptr;
	const char *error;
	// The settings_get() macro casts through void *, which C++ refuses.
	if ((settings_get)(master_service_get_event(master_service),
			   &rawlog_ext_login_setting_parser_info,
			   SETTINGS_GET_FLAG_NO_EXPAND, __FILE__, __LINE__,
			   reinterpret_cast<const void **>(&set), &error) < 0) {
		// Without the settings module the configuration knows no such
		// settings (and has none): the environment alone, as on 2.3.
		if (strstr(error, "has no settings struct named") == nullptr) {
			error_r = error;
			return false;
		}
		set = nullptr;
	}
	login_set = set;
	getenv_r = [](const char *name) {
		const char *value =
			login_set == nullptr ? nullptr : login_setting(name);
		return value != nullptr ? value : getenv(name);
	};
	return true;
}

void login_settings_free()
{
	settings_free(login_set);
}

bool proxy_backend(struct client *client, ProxyBackend &backend_r,
		   const char *&why_r)
{
	struct login_proxy *proxy = client->login_proxy;
	auto *head = reinterpret_cast<LoginProxyHead *>(proxy);
	// The address of source_ip pins the layout down; the rest are
	// compared (pointers are compared, not followed).
	if (static_cast<const void *>(&head->source_ip) !=
	    static_cast<const void *>(login_proxy_get_source_host(proxy)) ||
	    head->client != client ||
	    head->event != login_proxy_get_event(proxy) ||
	    head->host != login_proxy_get_host(proxy) ||
	    head->port != login_proxy_get_port(proxy) ||
	    head->ssl_flags != login_proxy_get_ssl_flags(proxy) ||
	    head->server_input != login_proxy_get_server_istream(proxy) ||
	    head->server_output != login_proxy_get_server_ostream(proxy) ||
	    head->input_callback == nullptr ||
	    (head->multiplex_orig_input != nullptr &&
	     head->multiplex_input != head->server_input)) {
		why_r = "unexpected login proxy layout";
		return false;
	}
	if (rawlog_streams_active(head, why_r))
		return false;
	backend_r.input = &head->server_input;
	backend_r.output = &head->server_output;
	backend_r.input_callback = &head->input_callback;
	backend_r.multiplex_orig_input = head->multiplex_orig_input;
	backend_r.host = head->host;
	backend_r.port = head->port;
	return true;
}

bool proxy_uses_starttls(struct client *client)
{
	return (login_proxy_get_ssl_flags(client->login_proxy) &
		AUTH_PROXY_SSL_FLAG_STARTTLS) != 0;
}

bool hook_iostream_change(struct client_vfuncs *v,
			  void (*post)(struct client *client))
{
	v->iostream_change_post = post;
	return true;
}

void call_iostream_change_post(const struct client_vfuncs *super,
			       struct client *client)
{
	if (super->iostream_change_post != nullptr)
		super->iostream_change_post(client);
}

bool client_output_multiplexed(struct client *client)
{
	return client->multiplex_output != nullptr;
}

void hook_create(struct client_vfuncs *v,
		 const struct client_vfuncs *(*super_of)(struct client *client),
		 void (*created)(struct client *client))
{
	super_of_fn = super_of;
	created_fn = created;
	v->create = create;
}

bool submission_hook_start_tls(struct client *, submission_start_tls_t *,
			       submission_start_tls_t **, const char *&why_r)
{
	why_r = "not needed on 2.4";
	return false;
}

} // namespace login_internals
} // namespace rawlog_ext
