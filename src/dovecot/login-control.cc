#include "login-control.hh"
#include "guard.hh"
#include "warn-once.hh"

#include <memory>
#include <new>

DOVECOT_EXTERN_C_BEGIN
#include "dict.h"
#include "ioloop.h"
#include "time-util.h"
#include "login-common.h"
#include "client-common.h"
#include "login-proxy.h"
DOVECOT_EXTERN_C_END

#include "login-internals.hh"

namespace rawlog_ext {

namespace {

// Lookups waiting at once per process: each holds up to two legs of
// RAWLOG_EXT_LOGIN_HOLD bytes until its answer.
const unsigned int max_in_flight = 64;
// After a failed or slow answer the dict is not asked for this long: a
// dict service that cannot keep up would otherwise make every login pay
// (its connect retries block the process for up to a second).
const time_t pause_secs = 30;
const long long slow_msecs = 1000;

struct dict *control_dict;
// For guard() and as the dict's parent: lookups outlive their sessions.
struct event *control_event;
bool drivers_registered;
unsigned int in_flight;
unsigned int adds_in_flight;	// byte counts being committed
time_t paused_until;

// 2.3 has no dict_have_async_operations(): ours, counted.
bool pending_operations()
{
	return in_flight > 0 || adds_in_flight > 0;
}

// One user's lookup: enabled/, then (if there is an entry) used/.
struct Lookup {
	std::function<void(const LoginControlAnswer &)> done;
	std::string enabled_key;
	std::string used_key;
	std::string value;
	struct timeval started;
};

void finish(Lookup *lookup, const LoginControlAnswer &answer) noexcept
{
	in_flight--;
	if (!answer.ok ||
	    timeval_diff_msecs(&ioloop_timeval, &lookup->started) > slow_msecs)
		paused_until = ioloop_time + pause_secs;
	// done() does not throw; the lookup goes whatever it does.
	lookup->done(answer);
	delete lookup;
}

void fail(Lookup *lookup, const std::string &key, const char *error) noexcept
{
	LoginControlAnswer answer;
	(void)guard(control_event, "reading the control dict", [&] {
		answer.error = "control dict: looking up " + key + " failed: " +
			(error != nullptr ? error : "(no reason)");
	});
	finish(lookup, answer);
}

void used_answered(const struct dict_lookup_result *result,
		   void *context) noexcept
{
	auto *lookup = static_cast<Lookup *>(context);
	if (result->ret < 0) {
		fail(lookup, lookup->used_key, result->error);
		return;
	}
	LoginControlAnswer answer;
	if (guard(control_event, "reading the control dict", [&] {
		std::string used = result->ret > 0 && result->value != nullptr ?
			result->value : "";
		answer.state = control_state(&lookup->value,
					     result->ret > 0 ? &used : nullptr,
					     ioloop_time, answer.left);
		answer.entry = lookup->enabled_key + "=" + lookup->value +
			", used=" + used;
	}))
		answer.ok = true;
	finish(lookup, answer);
}

void enabled_answered(const struct dict_lookup_result *result,
		      void *context) noexcept
{
	auto *lookup = static_cast<Lookup *>(context);
	if (result->ret < 0) {
		fail(lookup, lookup->enabled_key, result->error);
		return;
	}
	if (result->ret == 0 || result->value == nullptr) {
		LoginControlAnswer answer;
		answer.ok = true;
		answer.state = ControlState::off;
		finish(lookup, answer);
		return;
	}
	if (!guard(control_event, "reading the control dict", [&] {
		lookup->value = result->value;
	})) {
		fail(lookup, lookup->enabled_key, "out of memory");
		return;
	}
	struct dict_op_settings set;
	i_zero(&set);
	dict_lookup_async(control_dict, &set, lookup->used_key.c_str(),
			  used_answered, lookup);
}

struct Add {
	struct event *event;
	std::string key;
};

void add_committed(const struct dict_commit_result *result,
		   void *context) noexcept
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
	adds_in_flight--;
	event_unref(&add->event);
	delete add;
}

// What is still pending at exit, for at most wait_msecs: a service_count=1
// login process ends right after its handoff, and a hung dict must not
// keep it (and its process slot) for lib-dict's 30 s. False if something
// was still pending then.
const unsigned int wait_msecs = 2000;

struct ExitWait {
	struct ioloop *loop;
	struct timeval deadline;
};

void exit_wait_check(ExitWait *wait)
{
	if (!pending_operations() ||
	    timeval_cmp(&ioloop_timeval, &wait->deadline) >= 0)
		io_loop_stop(wait->loop);
}

bool wait_pending()
{
	if (!pending_operations())
		return true;
	struct ioloop *prev = current_ioloop;
	if (prev == nullptr)
		return false;
	ExitWait wait;
	wait.loop = io_loop_create();
	(void)dict_switch_ioloop(control_dict);
	wait.deadline = ioloop_timeval;
	timeval_add_msecs(&wait.deadline, wait_msecs);
	struct timeout *to = timeout_add_short(20, exit_wait_check, &wait);
	io_loop_run(wait.loop);
	timeout_remove(&to);
	io_loop_set_current(prev);
	(void)dict_switch_ioloop(control_dict);
	io_loop_set_current(wait.loop);
	io_loop_destroy(&wait.loop);
	return !pending_operations();
}

} // namespace

int login_control_init(const LoginConfig &config, std::string &error_r)
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
						control_event, &control_dict,
						error_r)) {
		error_r = "RAWLOG_EXT_LOGIN_CONTROL_SOCKET=" +
			config.control_socket + ": " + error_r;
		return -1;
	}
	return 1;
}

void login_control_deinit()
{
	// Answers and byte counts still on their way are waited for, briefly;
	// a dict still busy then is left to the process's exit.
	if (control_dict != nullptr) {
		if (wait_pending()) {
			login_internals::control_dict_close(&control_dict);
		} else {
			e_warning(control_event, "control dict: answers or byte "
				  "counts still pending at exit after %u ms: not "
				  "waited for", wait_msecs);
			control_dict = nullptr;
		}
	}
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
	if (in_flight >= max_in_flight || ioloop_time < paused_until) {
		LoginControlAnswer answer;
		answer.error = in_flight >= max_in_flight ?
			"control dict: " + std::to_string(max_in_flight) +
			" lookups waiting in this process: not asking" :
			"control dict: not asked for " +
			std::to_string(pause_secs) + " s after a lookup failed "
			"or took more than " + std::to_string(slow_msecs) + " ms";
		done(answer);
		return;
	}
	auto *lookup = new Lookup();
	try {
		lookup->done = std::move(done);
		lookup->enabled_key = control_enabled_key(user);
		lookup->used_key = control_used_key(user);
	} catch (...) {
		delete lookup;
		throw;
	}
	lookup->started = ioloop_timeval;
	in_flight++;
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
	adds_in_flight++;
	dict_transaction_commit_async(&t, add_committed, add);
}

} // namespace rawlog_ext
