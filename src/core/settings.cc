#include "settings.hh"

#include <strings.h>

#include <cctype>

namespace rawlog_ext {

namespace {

// detail_r: what is wrong, when more than "expected ..." can be said.
using Parser = bool (*)(const std::string &value, Settings &set,
			std::string &detail_r);

struct SettingDef {
	const char *name;
	Parser parse;
	const char *expected;	// for the error message
	// The value is never repeated in an error (a key pasted by mistake
	// could be a secret one); detail_r says what is wrong.
	bool quiet = false;
};

bool parse_dir(const std::string &value, Settings &set, std::string &)
{
	set.dir = value;
	return true;
}

bool parse_lmtp_dir(const std::string &value, Settings &set, std::string &)
{
	set.lmtp_dir = value;
	return true;
}

template <bool Settings::*Field>
bool parse_bool_field(const std::string &value, Settings &set, std::string &)
{
	return parse_bool(value, set.*Field);
}

bool parse_direction(const std::string &value, Settings &set, std::string &)
{
	if (value == "both") {
		set.log_in = set.log_out = true;
	} else if (value == "in") {
		set.log_in = true;
		set.log_out = false;
	} else if (value == "out") {
		set.log_in = false;
		set.log_out = true;
	} else {
		return false;
	}
	return true;
}

bool parse_timestamps(const std::string &value, Settings &set, std::string &)
{
	bool on;
	if (value == "chunks")
		set.timestamps = Timestamps::chunks;
	else if (parse_bool(value, on))
		set.timestamps = on ? Timestamps::lines : Timestamps::none;
	else
		return false;
	return true;
}

bool parse_format(const std::string &value, Settings &set, std::string &)
{
	if (value == "split")
		set.format = Format::split;
	else if (value == "transcript")
		set.format = Format::transcript;
	else
		return false;
	return true;
}

bool parse_seal_recipients(const std::string &value, Settings &set,
			   std::string &detail_r)
{
	return age_parse_recipients(value, set.seal_recipients, detail_r);
}

bool parse_enabled(const std::string &value, Settings &set, std::string &)
{
	bool on;
	if (!parse_bool(value, on))
		return false;
	set.enabled = on ? Enabled::yes : Enabled::no;
	return true;
}

bool parse_lmtp_recipients(const std::string &value, Settings &set,
			   std::string &)
{
	bool on;
	if (strcasecmp(value.c_str(), "auto") == 0)
		set.lmtp_recipients = LmtpRecipients::automatic;
	else if (parse_bool(value, on))
		set.lmtp_recipients = on ? LmtpRecipients::yes :
			LmtpRecipients::no;
	else
		return false;
	return true;
}

bool parse_max_size(const std::string &value, Settings &set, std::string &)
{
	return parse_size(value, set.max_size);
}

const SettingDef setting_defs[] = {
	{ "rawlog_ext_dir", parse_dir, "a directory" },
	{ "rawlog_ext_enabled", parse_enabled, "yes or no" },
	{ "rawlog_ext_autocreate", parse_bool_field<&Settings::autocreate>, "yes or no" },
	{ "rawlog_ext_timestamps", parse_timestamps, "yes, no or chunks" },
	{ "rawlog_ext_boundaries", parse_bool_field<&Settings::boundaries>, "yes or no" },
	{ "rawlog_ext_direction", parse_direction, "in, out or both" },
	{ "rawlog_ext_ip_in_name", parse_bool_field<&Settings::ip_in_name>, "yes or no" },
	{ "rawlog_ext_format", parse_format, "split or transcript" },
	{ "rawlog_ext_max_size", parse_max_size, "a size such as 0, 512k, 100M or 2G" },
	{ "rawlog_ext_lmtp_dir", parse_lmtp_dir, "a directory" },
	{ "rawlog_ext_lmtp_recipients", parse_lmtp_recipients, "auto, yes or no" },
	{ "rawlog_ext_relay", parse_bool_field<&Settings::relay>, "yes or no" },
	{ "rawlog_ext_redact", parse_bool_field<&Settings::redact>, "yes or no" },
	{ "rawlog_ext_seal_recipients", parse_seal_recipients,
	  "age1... recipients or file:/path to a recipients file", true },
};

} // namespace

const char *const setting_names[] = {
	"rawlog_ext_dir", "rawlog_ext_enabled", "rawlog_ext_autocreate",
	"rawlog_ext_timestamps",
	"rawlog_ext_boundaries", "rawlog_ext_direction",
	"rawlog_ext_ip_in_name", "rawlog_ext_format", "rawlog_ext_max_size",
	"rawlog_ext_lmtp_dir", "rawlog_ext_lmtp_recipients",
	"rawlog_ext_relay", "rawlog_ext_redact", "rawlog_ext_seal_recipients",
	nullptr
};
static_assert(sizeof(setting_names) / sizeof(setting_names[0]) ==
	      sizeof(setting_defs) / sizeof(setting_defs[0]) + 1,
	      "setting_names and setting_defs must list the same settings");

bool parse_bool(const std::string &value, bool &result_r)
{
	std::string lower = value;
	for (char &c : lower)
		c = (char)tolower((unsigned char)c);
	// yes/no as in Dovecot's settings (any case), and the y/n/1/0
	// shorthands admins use in plugin {} values.
	if (lower == "yes" || lower == "y" || lower == "1") {
		result_r = true;
		return true;
	}
	if (lower == "no" || lower == "n" || lower == "0") {
		result_r = false;
		return true;
	}
	return false;
}

bool parse_size(const std::string &value, uint64_t &result_r)
{
	size_t i = 0;
	uint64_t number = 0;
	for (; i < value.size() && isdigit((unsigned char)value[i]); i++) {
		unsigned int digit = (unsigned int)(value[i] - '0');
		if (number > (UINT64_MAX - digit) / 10)
			return false;
		number = number * 10 + digit;
	}
	if (i == 0)
		return false;
	while (i < value.size() && value[i] == ' ')
		i++;

	std::string unit = value.substr(i);
	for (char &c : unit)
		c = (char)tolower((unsigned char)c);
	// Dovecot size units are binary: k = 1024.
	unsigned int shift;
	if (unit.empty() || unit == "b")
		shift = 0;
	else if (unit == "k" || unit == "kb" || unit == "kib")
		shift = 10;
	else if (unit == "m" || unit == "mb" || unit == "mib")
		shift = 20;
	else if (unit == "g" || unit == "gb" || unit == "gib")
		shift = 30;
	else if (unit == "t" || unit == "tb" || unit == "tib")
		shift = 40;
	else
		return false;
	if (shift > 0 && number > (UINT64_MAX >> shift))
		return false;
	result_r = number << shift;
	return true;
}

bool settings_parse(const Getenv &getenv, Settings &settings,
		    std::string &error_r)
{
	settings = Settings();
	for (const SettingDef &def : setting_defs) {
		const char *value = getenv(def.name);
		if (value == nullptr)
			continue;
		// An empty value means "default", as in Dovecot's plugin {}.
		if (value[0] == '\0')
			continue;
		std::string detail;
		if (!def.parse(value, settings, detail)) {
			error_r = std::string("Invalid setting ") + def.name +
				(def.quiet ? std::string() : "=" + std::string(value)) +
				": expected " + def.expected +
				(detail.empty() ? "" : " (" + detail + ")");
			return false;
		}
	}
	return true;
}

} // namespace rawlog_ext
