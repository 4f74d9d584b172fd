// The control dict (doveadm rawlog enable, issue #15) as the mail plugin
// and the doveadm plugin use it: Dovecot's dict API, which both lines
// share once a dict is open. Opening it reads settings, so that part is
// per line (internals-<line>/user-settings.cc): 2.3 the
// rawlog_ext_control_dict URI, 2.4 the dict inside the
// rawlog_ext_control { } filter.
#ifndef RAWLOG_EXT_CONTROL_DICT_HH
#define RAWLOG_EXT_CONTROL_DICT_HH

#include "compat.hh"
#include "../core/control.hh"

#include <functional>
#include <memory>
#include <string>

struct dict;
struct dict_transaction_context;

namespace rawlog_ext {

class ControlDict {
public:
	// 1 opened, 0 none configured, -1 error_r says why: the dict of
	// user's settings (userdb fields included).
	static int open(struct mail_user *user, struct event *event,
			std::unique_ptr<ControlDict> &dict_r,
			std::string &error_r);
	// Takes a dict opened otherwise (doveadm's commands without -u).
	static std::unique_ptr<ControlDict> adopt(struct dict *dict,
						  const char *username);
	~ControlDict();
	ControlDict(const ControlDict &) = delete;
	ControlDict &operator=(const ControlDict &) = delete;

	// 1 found, 0 not, -1 error_r says why.
	int lookup(const std::string &key, std::string &value_r,
		   std::string &error_r);
	// user's enablement and what it means for a session starting at now
	// (control_state()). 0: state_r and left_r set, entry_r the entry as
	// read ("<enabled key>=<value>, used=<value>", for messages); -1:
	// a lookup failed, error_r says why.
	int state(const std::string &user, time_t now, ControlState &state_r,
		  uint64_t &left_r, std::string &entry_r, std::string &error_r);
	// One transaction: set (value non-null) or unset each key. 0 on
	// success, -1 error_r says why. Committed asynchronously and waited
	// for (a synchronous commit to redis: crashes 2.3.19's doveadm).
	struct Change {
		std::string key;
		const std::string *value;	// nullptr: unset
	};
	int change(const Change *changes, size_t count, std::string &error_r);
	// Adds n to a counter. 1 added, 0 no such key (the file dict does
	// not create it: a user disabled meanwhile stays without one; Redis's
	// INCRBY does create it, harmless without an enabled/ key), -1 error.
	int add(const std::string &key, uint64_t n, std::string &error_r);
	// Every key under prefix (recursively) with its value; false with
	// error_r if the dict cannot iterate (redis: see
	// control_dict_unsupported()) or failed.
	bool iterate(const std::string &prefix,
		     const std::function<void(const char *key,
					      const char *value)> &each,
		     std::string &error_r);

private:
	ControlDict(struct dict *dict, const char *username);
	int commit(struct dict_transaction_context *t, std::string &error_r);

	struct dict *dict_;
	std::string username_;
};

// Whether error (of iterate()) says the dict's driver cannot do it at all
// (lib-dict's dict-fail, the same words on both lines), rather than that
// it failed.
bool control_dict_unsupported(const std::string &error);

// Per line (internals-<line>/user-settings.cc): the dict configured for
// user. 1 dict_r set, 0 none configured, -1 error_r.
int control_dict_init(struct mail_user *user, struct event *event,
		      struct dict **dict_r, std::string &error_r);

} // namespace rawlog_ext

#endif
