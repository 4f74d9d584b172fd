#include "control-dict.hh"

#include <functional>
#include <new>

DOVECOT_EXTERN_C_BEGIN
#include "dict.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {

namespace {

struct CommitWait {
	bool done = false;
	enum dict_commit_ret ret = DICT_COMMIT_RET_FAILED;
	std::string error;
};

void commit_callback(const struct dict_commit_result *result,
		     CommitWait *wait)
{
	wait->done = true;
	wait->ret = result->ret;
	if (result->error != nullptr)
		wait->error = result->error;
}

} // namespace

int ControlDict::open(struct mail_user *user, struct event *event,
		      std::unique_ptr<ControlDict> &dict_r,
		      std::string &error_r)
{
	struct dict *dict = nullptr;
	int ret = control_dict_init(user, event, &dict, error_r);
	if (ret <= 0)
		return ret;
	dict_r = adopt(dict, user->username);
	return 1;
}

std::unique_ptr<ControlDict> ControlDict::adopt(struct dict *dict,
						const char *username)
{
	ControlDict *control = new (std::nothrow) ControlDict(dict, username);
	if (control == nullptr) {
		dict_deinit(&dict);
		throw std::bad_alloc();
	}
	return std::unique_ptr<ControlDict>(control);
}

ControlDict::ControlDict(struct dict *dict, const char *username)
	: dict_(dict), username_(username)
{
}

ControlDict::~ControlDict()
{
	dict_wait(dict_);
	dict_deinit(&dict_);
}

int ControlDict::lookup(const std::string &key, std::string &value_r,
			std::string &error_r)
{
	struct dict_op_settings set;
	i_zero(&set);
	set.username = username_.c_str();
	// Its own pool, not the data stack: copying the value may throw,
	// which must not skip a T_END.
	pool_t pool = pool_alloconly_create("rawlog_ext control lookup", 512);
	const char *value = nullptr, *error = nullptr;
	int ret = dict_lookup(dict_, &set, pool, key.c_str(), &value, &error);
	try {
		if (ret > 0)
			value_r = value;
		else if (ret < 0)
			error_r = error != nullptr ? error : "lookup failed";
	} catch (...) {
		pool_unref(&pool);
		throw;
	}
	pool_unref(&pool);
	return ret;
}

int ControlDict::state(const std::string &user, time_t now,
		       ControlState &state_r, uint64_t &left_r,
		       std::string &entry_r, std::string &error_r)
{
	const std::string key = control_enabled_key(user);
	std::string value, used;
	int found = lookup(key, value, error_r);
	int found_used = found <= 0 ? 0 :
		lookup(control_used_key(user), used, error_r);
	if (found < 0 || found_used < 0)
		return -1;
	state_r = control_state(found > 0 ? &value : nullptr,
				found_used > 0 ? &used : nullptr, now, left_r);
	entry_r = key + "=" + value + ", used=" + used;
	return 0;
}

int ControlDict::commit(struct dict_transaction_context *t,
			std::string &error_r)
{
	// On the heap: if the callback had not come by the end of
	// dict_wait() (it always should), it may still come later.
	CommitWait *wait = new (std::nothrow) CommitWait();
	if (wait == nullptr) {
		dict_transaction_rollback(&t);
		error_r = "out of memory";
		return -1;
	}
	dict_transaction_commit_async(&t, commit_callback, wait);
	if (!wait->done)
		dict_wait(dict_);
	if (!wait->done) {
		error_r = "commit did not finish";
		return -1;	// wait stays for the late callback
	}
	enum dict_commit_ret ret = wait->ret;
	std::string error;
	error.swap(wait->error);
	delete wait;
	switch (ret) {
	case DICT_COMMIT_RET_OK:
		return 1;
	case DICT_COMMIT_RET_NOTFOUND:
		return 0;
	default:
		error_r = error.empty() ? "commit failed" : error;
		return -1;
	}
}

int ControlDict::change(const Change *changes, size_t count,
			std::string &error_r)
{
	struct dict_op_settings set;
	i_zero(&set);
	set.username = username_.c_str();
	struct dict_transaction_context *t = dict_transaction_begin(dict_, &set);
	for (size_t i = 0; i < count; i++) {
		if (changes[i].value != nullptr)
			dict_set(t, changes[i].key.c_str(),
				 changes[i].value->c_str());
		else
			dict_unset(t, changes[i].key.c_str());
	}
	return commit(t, error_r) < 0 ? -1 : 0;
}

int ControlDict::add(const std::string &key, uint64_t n,
		     std::string &error_r)
{
	struct dict_op_settings set;
	i_zero(&set);
	set.username = username_.c_str();
	struct dict_transaction_context *t = dict_transaction_begin(dict_, &set);
	dict_atomic_inc(t, key.c_str(), (long long)n);
	return commit(t, error_r);
}

bool ControlDict::iterate(const std::string &prefix,
			  const std::function<void(const char *, const char *)> &each,
			  std::string &error_r)
{
	struct dict_op_settings set;
	i_zero(&set);
	set.username = username_.c_str();
	struct dict_iterate_context *iter =
		dict_iterate_init(dict_, &set, prefix.c_str(),
				  DICT_ITERATE_FLAG_RECURSE);
	const char *key, *value, *error;
	try {
		while (dict_iterate(iter, &key, &value))
			each(key, value);
	} catch (...) {
		(void)dict_iterate_deinit(&iter, &error);
		throw;
	}
	if (dict_iterate_deinit(&iter, &error) < 0) {
		error_r = error;
		return false;
	}
	return true;
}

bool control_dict_unsupported(const std::string &error)
{
	static const char unsupported[] = "Unsupported operation";
	return error.compare(0, sizeof(unsupported) - 1, unsupported) == 0;
}

} // namespace rawlog_ext
