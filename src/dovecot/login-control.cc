#include "login-control.hh"
#include "guard.hh"
#include "warn-once.hh"

#include <memory>
#include <new>

DOVECOT_EXTERN_C_BEGIN
#include "dict.h"
#include "login-common.h"
#include "client-common.h"
#include "login-proxy.h"
DOVECOT_EXTERN_C_END

#include "login-internals.hh"

namespace rawlog_ext {

namespace {

struct dict *control_dict;
// For guard(): the lookups outlive the sessions that asked.
struct event *control_event;
bool drivers_registered;

// One user's lookup: enabled/, then (if there is an entry) used/.
struct Lookup {
	std::string user;
	std::function<void(const LoginControlAnswer &)> done;
	std::string enabled_key;
	std::string value;
};

void finish(Lookup *lookup, const LoginControlAnswer &answer)
{
	// done() must not throw; the lookup goes whatever it does.
	lookup->done(answer);
	delete lookup;
}

void fail(Lookup *lookup, const char *key, const char *error)
{
	LoginControlAnswer answer;
	answer.ok = false;
	(void)guard(control_event, "reading the control dict", [&] {
		answer.error = std::string("control dict: looking up ") + key +
			" failed: " + (error != nullptr ? error : "(no reason)");
	});
	finish(lookup, answer);
}

void used_answered(const struct dict_lookup_result *result, void *context)
{
	auto *lookup = static_cast<Lookup *>(context);
	if (result->ret < 0) {
		fail(lookup, control_used_key(lookup->user).c_str(),
		     result->error);
		return;
	}
	LoginControlAnswer answer;
	answer.ok = true;
	if (!guard(control_event, "reading the control dict", [&] {
		std::string used = result->ret > 0 && result->value != nullptr ?
			result->value : "";
		answer.state = control_state(&lookup->value,
					     result->ret > 0 ? &used : nullptr,
					     ioloop_time, answer.left);
		answer.entry = lookup->enabled_key + "=" + lookup->value +
			", used=" + used;
	})) {
		answer.ok = false;
		answer.error = "control dict: reading the entry failed";
	}
	finish(lookup, answer);
}

void enabled_answered(const struct dict_lookup_result *result, void *context)
{
	auto *lookup = static_cast<Lookup *>(context);
	if (result->ret < 0) {
		fail(lookup, lookup->enabled_key.c_str(), result->error);
		return;
	}
	if (result->ret == 0 || result->value == nullptr) {
		LoginControlAnswer answer;
		answer.ok = true;
		answer.state = ControlState::off;
		finish(lookup, answer);
		return;
	}
	std::string key;
	if (!guard(control_event, "reading the control dict", [&] {
		lookup->value = result->value;
		key = control_used_key(lookup->user);
	})) {
		fail(lookup, lookup->enabled_key.c_str(), "out of memory");
		return;
	}
	struct dict_op_settings set;
	i_zero(&set);
	dict_lookup_async(control_dict, &set, key.c_str(), used_answered,
			  lookup);
}

struct Add {
	struct event *event;
	std::string key;
};

void add_committed(const struct dict_commit_result *result, void *context)
{
	auto *add = static_cast<Add *>(context);
	// DICT_COMMIT_RET_NOTFOUND: no used/ key (disabled meanwhile), as in
	// the mail processes' count.
	if (result->ret < 0) {
		(void)guard(add->event, "counting the log's bytes", [&] {
			warn_once(add->event, "control dict: adding to " +
				  add->key + " failed: " +
				  (result->error != nullptr ? result->error :
				   "(no reason)"));
		});
	}
	event_unref(&add->event);
	delete add;
}

} // namespace

int login_control_init(const LoginConfig &config, struct event *event,
		       std::string &error_r)
{
	if (config.control_socket.empty())
		return 0;
	std::string path = config.control_socket;
	if (path[0] != '/') {
		// Dovecot's own: set when the process will chroot itself.
		const char *chroot_dir = getenv("RESTRICT_CHROOT");
		path = chroot_dir != nullptr && chroot_dir[0] != '\0' ?
			"/" + path :
			std::string(login_internals::base_dir()) + "/login/" + path;
	}
	dict_drivers_register_builtin();
	drivers_registered = true;
	control_event = event_create(nullptr);
	event_set_append_log_prefix(control_event, "rawlog_ext_login: ");
	if (!login_internals::control_dict_open(path, config.control_name,
						event, &control_dict, error_r)) {
		error_r = "RAWLOG_EXT_LOGIN_CONTROL_SOCKET=" +
			config.control_socket + ": " + error_r;
		return -1;
	}
	return 1;
}

void login_control_deinit()
{
	// Byte counts and answers still on their way are waited for.
	if (control_dict != nullptr)
		login_internals::control_dict_close(&control_dict);
	if (drivers_registered) {
		dict_drivers_unregister_builtin();
		drivers_registered = false;
	}
	event_unref(&control_event);
}

bool login_control_configured()
{
	return control_dict != nullptr;
}

void login_control_lookup(const std::string &user,
			  std::function<void(const LoginControlAnswer &)> done)
{
	auto *lookup = new Lookup();
	try {
		lookup->user = user;
		lookup->done = std::move(done);
		lookup->enabled_key = control_enabled_key(user);
	} catch (...) {
		delete lookup;
		throw;
	}
	struct dict_op_settings set;
	i_zero(&set);
	// May answer before it returns (e.g. the socket is not there).
	dict_lookup_async(control_dict, &set, lookup->enabled_key.c_str(),
			  enabled_answered, lookup);
}

void login_control_add(const std::string &user, uint64_t bytes,
		       struct event *event)
{
	if (bytes == 0 || control_dict == nullptr)
		return;
	auto *add = new Add();
	try {
		add->key = control_used_key(user);
	} catch (...) {
		delete add;
		throw;
	}
	add->event = event;
	event_ref(event);
	struct dict_op_settings set;
	i_zero(&set);
	struct dict_transaction_context *t =
		dict_transaction_begin(control_dict, &set);
	dict_atomic_inc(t, add->key.c_str(), (long long)bytes);
	dict_transaction_commit_async(&t, add_committed, add);
}

} // namespace rawlog_ext
