// Login process internals, Dovecot 2.4 (layouts read in 2.4.0-2.4.4).
#include "../compat.hh"

DOVECOT_EXTERN_C_BEGIN
#include "login-common.h"
#include "client-common.h"
#include "login-proxy.h"
#include "master-service.h"
#include "master-service-settings.h"
#include "dict.h"
#include "settings.h"
#include "login-settings-info.h"
DOVECOT_EXTERN_C_END

#include "../login-internals.hh"

#include <cctype>
#include <cstdlib>
#include <cstring>

namespace rawlog_ext {
namespace login_internals {

namespace {

// The head of login-proxy.c's private struct login_proxy, in three parts:
// what 2.4.0 to 2.4.4 share before and after the rawlog streams that
// 2.4.2 inserted (e0f354cb13). Each part ends on a pointer, so nesting
// them adds no padding the C struct lacks (and source_ip is checked).
struct HeadStart {
	struct login_proxy *prev, *next;
	struct login_proxy *user_prev, *user_next;
	struct client *client;
	struct event *event;
	int server_fd;
	struct io *client_wait_io, *server_io, *side_channel_io;
	struct istream *client_input, *server_input;
	struct ostream *client_output, *server_output;
};

struct RawlogStreams {
	struct istream *pre_rawlog_input, *rawlog_input;
	struct ostream *pre_rawlog_output, *rawlog_output;
};

struct HeadRest {
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

// 2.4.0 and 2.4.1 ...
struct LoginProxyHead240 {
	HeadStart start;
	HeadRest rest;
};

// ... and 2.4.2 to 2.4.4.
struct LoginProxyHead242 {
	HeadStart start;
	RawlogStreams rawlog;
	HeadRest rest;
};

bool rawlog_streams_active(const LoginProxyHead240 &, const char *&)
{
	return false;
}

bool rawlog_streams_active(const LoginProxyHead242 &head, const char *&why_r)
{
	if (head.rawlog.rawlog_input == nullptr &&
	    head.rawlog.rawlog_output == nullptr)
		return false;
	// proxy_rawlog_deinit() asserts its streams are the outermost.
	why_r = "login_proxy_rawlog_dir is set";
	return true;
}

enum class Layout { unknown, v240, v242 };

// The layout of the Dovecot running (libdovecot's version, not the
// headers'), from the versions whose login-proxy.c was read: a later
// 2.4.x may have moved input_callback, which nothing public pins down.
Layout running_layout(const char *&version_r)
{
	// NULL with version_ignore=yes: then the version built against.
	const char *version = master_service_get_version_string(master_service);
	version_r = version != nullptr ? version : DOVECOT_VERSION;
	if (strncmp(version_r, "2.4.", 4) != 0 ||
	    !isdigit((unsigned char)version_r[4]))
		return Layout::unknown;
	char *end;
	unsigned long micro = strtoul(version_r + 4, &end, 10);
	if (isdigit((unsigned char)*end))
		return Layout::unknown;
	if (micro <= 1)
		return Layout::v240;
	if (micro <= 4)
		return Layout::v242;
	return Layout::unknown;
}

template <typename Head>
bool read_head(struct client *client, ProxyBackend &backend_r,
	       const char *&why_r)
{
	struct login_proxy *proxy = client->login_proxy;
	auto &head = *reinterpret_cast<Head *>(proxy);
	const HeadStart &start = head.start;
	const HeadRest &rest = head.rest;
	// The address of source_ip pins the layout down; the rest are
	// compared (pointers are compared, not followed).
	if (static_cast<const void *>(&rest.source_ip) !=
	    static_cast<const void *>(login_proxy_get_source_host(proxy)) ||
	    start.client != client ||
	    start.event != login_proxy_get_event(proxy) ||
	    rest.host != login_proxy_get_host(proxy) ||
	    rest.port != login_proxy_get_port(proxy) ||
	    rest.ssl_flags != login_proxy_get_ssl_flags(proxy) ||
	    start.server_input != login_proxy_get_server_istream(proxy) ||
	    start.server_output != login_proxy_get_server_ostream(proxy) ||
	    rest.input_callback == nullptr ||
	    (rest.multiplex_orig_input != nullptr &&
	     rest.multiplex_input != start.server_input)) {
		why_r = "unexpected login proxy layout";
		return false;
	}
	if (rawlog_streams_active(head, why_r))
		return false;
	backend_r.input = &head.start.server_input;
	backend_r.output = &head.start.server_output;
	backend_r.input_callback = &head.rest.input_callback;
	backend_r.multiplex_orig_input = rest.multiplex_orig_input;
	backend_r.host = rest.host;
	backend_r.port = rest.port;
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
			// Empty: the default, not set here (see the header).
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
		// No public call says whether the configuration has a struct,
		// and the module dir the config process loads from is not in
		// the headers: this exact error (2.4.0-2.4.4) says it, any
		// other one (a changed wording too) stops us with an Error.
		const char *unknown = t_strdup_printf(
			"BUG: Configuration has no settings struct named '%s'",
			rawlog_ext_login_setting_parser_info.name);
		if (strcmp(error, unknown) != 0) {
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
	const char *version;
	switch (running_layout(version)) {
	case Layout::v240:
		return read_head<LoginProxyHead240>(client, backend_r, why_r);
	case Layout::v242:
		return read_head<LoginProxyHead242>(client, backend_r, why_r);
	case Layout::unknown:
		break;
	}
	why_r = t_strdup_printf("the login proxy layout of Dovecot %s "
				"is not known", version);
	return false;
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

const char *base_dir()
{
	return master_service_get_service_settings(master_service)->base_dir;
}

namespace {
// Our dict's settings, for the process's life (its events point here).
struct settings_instance *control_instance;
}

bool control_dict_open(const std::string &socket, const std::string &name,
		       struct event *event, struct dict **dict_r,
		       std::string &error_r)
{
	// A dict named "proxy" has the proxy driver (dict_settings_check());
	// its socket and name are ours, whatever the configuration says at
	// the top level. "*/": inside the dict's named list filter too.
	if (control_instance == nullptr) {
		control_instance = settings_instance_new(
			master_service_get_settings_root(master_service));
	}
	settings_override(control_instance, "*/dict_proxy_socket_path",
			  socket.c_str(), SETTINGS_OVERRIDE_TYPE_CODE);
	settings_override(control_instance, "*/dict_proxy_name", name.c_str(),
			  SETTINGS_OVERRIDE_TYPE_CODE);
	settings_override(control_instance, "*/dict_driver", "proxy",
			  SETTINGS_OVERRIDE_TYPE_CODE);
	struct event *dict_event = event_create(event);
	event_set_ptr(dict_event, SETTINGS_EVENT_INSTANCE, control_instance);
	const char *error = nullptr;
	int ret = dict_init_filter_auto(dict_event, "proxy", dict_r, &error);
	event_unref(&dict_event);
	if (ret < 0) {
		settings_instance_free(&control_instance);
		error_r = error != nullptr ? error : "dict_init_filter_auto() failed";
		return false;
	}
	return true;
}

void control_dict_close(struct dict **dict)
{
	dict_deinit(dict);
	if (control_instance != nullptr)
		settings_instance_free(&control_instance);
}

} // namespace login_internals
} // namespace rawlog_ext
