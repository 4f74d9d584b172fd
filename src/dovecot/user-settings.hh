// Reading rawlog_ext's settings from Dovecot: the only code that asks for a
// setting by name. Defined per Dovecot line in internals-<line>/
// (2.3: the plugin {} environment; 2.4: settings_get() on the
// settings module's setting_parser_info); every value goes through the
// one core validator, settings_parse().
#ifndef RAWLOG_EXT_USER_SETTINGS_HH
#define RAWLOG_EXT_USER_SETTINGS_HH

#include "compat.hh"
#include "../core/settings.hh"

#include <string>

struct mail_user_settings;

namespace rawlog_ext {

// A mail user's settings, userdb fields included, with rawlog_ext_dir
// expanded for this user. False (error_r names the setting) on an invalid
// value, on a variable that expands to nothing, and on 2.4 on a 2.3
// %-letter variable (error_r gives the 2.4 spelling).
bool user_settings_get(struct mail_user *user, Settings &settings_r,
		       std::string &error_r);

// Where a connection's settings come from before any user is known (the
// LMTP connection): the connection's event on 2.4 (so protocol filters
// apply), the service's mail_user_settings on 2.3 (its plugin {}). Fill
// it with the line's lmtp-settings-source.hh.
struct ConnectionSettingsSource {
	struct event *event;
	const struct mail_user_settings *user_set;	// 2.3 only
};

// The connection's settings, values as configured: dir and lmtp_dir are
// not expanded (see expand_dir_template()).
bool connection_settings_get(const ConnectionSettingsSource &source,
			     Settings &settings_r, std::string &error_r);

// rawlog_ext_dir's template tmpl expanded for user as a session of
// service would expand it (doveadm rawlog status), with the same checks
// as user_settings_get().
bool expand_user_dir(struct mail_user *user, const char *service,
		     const std::string &tmpl, std::string &dir_r,
		     std::string &error_r);

// One variable of a directory template, known by its 2.3 letter (or
// '\0') and its 2.4 name (the 2.3 %{long} form).
struct TemplateVariable {
	char key;
	const char *name;
	const char *value;
};

// Expands setting's template tmpl with vars (ended by a nullptr name),
// refusing, as user_settings_get() does for rawlog_ext_dir, variables
// that expand to nothing and (2.4) 2.3 %-letter ones.
bool expand_dir_template(const char *setting, const std::string &tmpl,
			 const TemplateVariable *vars, std::string &dir_r,
			 std::string &error_r);

} // namespace rawlog_ext

#endif
