// rawlog_ext settings: one table, parsed and validated without Dovecot.
#ifndef RAWLOG_EXT_SETTINGS_HH
#define RAWLOG_EXT_SETTINGS_HH

#include "age.hh"
#include "format.hh"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rawlog_ext {

enum class Format { split, transcript };
// rawlog_ext_enabled: unset = by rawlog_ext_dir (and, with a control
// dict, by the dict); yes = logged whatever the dict says; no = never.
enum class Enabled { unset, yes, no };
// rawlog_ext_lmtp_recipients: automatic = follow an LMTP connection (for
// its recipients' logs) only when its configuration names a directory
// (rawlog_ext_dir or rawlog_ext_lmtp_dir): a module loaded with nothing
// configured then costs nothing; yes = always (a directory that only
// userdb fields name); no = never.
enum class LmtpRecipients { automatic, yes, no };

// Told how many bytes a session's log took, once, when its Sink goes
// (the control dict's byte budget, doveadm rawlog enable --max-size).
class SessionAccounting {
public:
	virtual ~SessionAccounting() = default;
	virtual void add(uint64_t bytes) noexcept = 0;
};

struct Settings {
	std::string dir;		// empty = logging off
	Enabled enabled = Enabled::unset;
	bool autocreate = false;
	Timestamps timestamps = Timestamps::lines;
	bool boundaries = false;
	bool log_in = true;		// rawlog_ext_direction
	bool log_out = true;
	bool ip_in_name = false;
	Format format = Format::split;
	uint64_t max_size = 0;		// 0 = unlimited
	// Per protocol (read where they apply):
	std::string lmtp_dir;		// LMTP connection logs; empty = none
	LmtpRecipients lmtp_recipients = LmtpRecipients::automatic;
	bool relay = true;		// submission's relay leg
	bool redact = true;		// credentials in logs become ***
	// rawlog_ext_seal_recipients, read (and a recipients file read) at
	// parse time: non-empty = every file of the session is sealed.
	std::vector<AgeRecipient> seal_recipients;
	// Not a setting: set by the glue when a control dict enabled the
	// session (shared by the session's logs, e.g. submission's relay leg).
	std::shared_ptr<SessionAccounting> accounting;
	bool max_size_is_budget = false;	// max_size is what the budget left
};

// Returns the value of a setting, or nullptr when it is not set.
using Getenv = std::function<const char *(const char *name)>;

// Whether an LMTP connection with these settings (its configuration's,
// before any user is known) is followed for its recipients' logs:
// rawlog_ext_lmtp_recipients=yes, or auto where a directory is named.
inline bool lmtp_follows_recipients(const Settings &set)
{
	return set.lmtp_recipients == LmtpRecipients::yes ||
		(set.lmtp_recipients == LmtpRecipients::automatic &&
		 (!set.dir.empty() || !set.lmtp_dir.empty()));
}

// Fills settings from getenv. On an invalid value returns false with
// error_r naming the setting and the value; settings is then unusable.
bool settings_parse(const Getenv &getenv, Settings &settings,
		    std::string &error_r);

// Helpers, exposed for tests.
bool parse_bool(const std::string &value, bool &result_r);
bool parse_size(const std::string &value, uint64_t &result_r);

// Names of every setting, nullptr-terminated (for docs and tests).
extern const char *const setting_names[];

} // namespace rawlog_ext

#endif
