// The runtime switch (doveadm rawlog enable, issue #15): what one user's
// enablement looks like in the control dict, and what it means for a
// session starting now. No Dovecot, no I/O: the dict calls are the
// glue's.
//
// Keys, under the dict's shared/ namespace (one entry per user, read by
// every host sharing the dict):
//   shared/rawlog-ext/enabled/<user>  "<expires> <max-bytes>": Unix time
//                                     the enablement ends; its byte
//                                     budget over all sessions, 0 = none
//   shared/rawlog-ext/used/<user>     bytes the user's logs took so far
//                                     (added to at each session's end)
//   shared/rawlog-ext/index           the users enable wrote (and disable
//                                     did not remove): their names as
//                                     below, sorted, unique, one space
//                                     between; for `rawlog list` on a
//                                     dict that cannot iterate (redis)
// <user> as login_user_dir() writes it: [A-Za-z0-9-_.+=@] as is, any
// other byte %XX, so no user name can reach another user's key.
#ifndef RAWLOG_EXT_CONTROL_HH
#define RAWLOG_EXT_CONTROL_HH

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

namespace rawlog_ext {

extern const char control_enabled_prefix[];	// "shared/rawlog-ext/enabled/"
extern const char control_used_prefix[];	// "shared/rawlog-ext/used/"
extern const char control_index_key[];		// "shared/rawlog-ext/index"

std::string control_enabled_key(const std::string &user);
std::string control_used_key(const std::string &user);
// The user of an enabled/ or used/ key (its %XX decoded); false if the
// key is neither or its name is not one control_*_key() writes.
bool control_key_user(const std::string &key, std::string &user_r);

// The index (control_index_key's value): the users it names, decoded, in
// its order. Names separated by any whitespace; a name control_*_key()
// would not write is skipped (and dropped by the two below).
std::vector<std::string> control_index_users(const std::string &value);
// The index value with user added or removed: sorted, unique, one space
// between names; "" when no user is left.
std::string control_index_add(const std::string &value, const std::string &user);
std::string control_index_remove(const std::string &value,
				 const std::string &user);

struct Enablement {
	time_t expires = 0;
	uint64_t max_bytes = 0;	// 0 = no budget
};

std::string control_value(const Enablement &e);
// False on anything control_value() does not write.
bool control_value_parse(const std::string &value, Enablement &e_r);

// What an enablement means for a session starting at now.
enum class ControlState {
	off,		// no entry: the user is not enabled
	on,		// logged; remaining_r is what is left of the budget
	expired,	// the entry's time has passed
	budget_used,	// its budget is spent
	invalid,	// the entry cannot be read: not logged
};
// value / used: the entries, nullptr when absent. remaining_r: bytes the
// session may still log (0 = no budget), for the on state.
ControlState control_state(const std::string *value, const std::string *used,
			   time_t now, uint64_t &remaining_r);
const char *control_state_name(ControlState state);

// "3600", "90s", "30m", "1h", "2d", "1w", "1 hour", "15 mins" (Dovecot's
// units); false on anything else, 0 or more than ten years.
bool parse_duration(const std::string &value, time_t &seconds_r);

} // namespace rawlog_ext

#endif
