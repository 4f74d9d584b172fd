// lmtp-settings.hh for Dovecot 2.3: lmtp keeps the service's settings in
// client->user_set; rawlog_ext_lmtp_dir is expanded here, with 2.3's
// var_expand() (one-letter and long names).
#include "../lmtp-settings.hh"
#include "../../core/naming.hh"

DOVECOT_EXTERN_C_BEGIN
#include "var-expand.h"
#include "lmtp-common.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {

namespace {

bool expand_connection_dir(const LmtpConnectionVars &vars, const char *value,
			   std::string &dir_r, std::string &error_r)
{
	const struct var_expand_table table[] = {
		{ 's', "lmtp", "service" },
		{ 'l', net_ip2addr(vars.local_ip), "local_ip" },
		{ 'r', net_ip2addr(vars.remote_ip), "remote_ip" },
		{ 'p', my_pid, "pid" },
		{ '\0', vars.session, "session" },
		{ '\0', my_hostname, "hostname" },
		{ '\0', dec2str(vars.local_port), "local_port" },
		{ '\0', dec2str(vars.remote_port), "remote_port" },
		{ '\0', nullptr, nullptr }
	};
	auto expand = [&table](const std::string &tmpl, std::string &value_r,
			       std::string &error_r) {
		string_t *str = t_str_new(256);
		const char *error;
		if (var_expand(str, tmpl.c_str(), table, &error) <= 0) {
			error_r = error;
			return false;
		}
		value_r = str_c(str);
		return true;
	};
	if (!check_template_variables("rawlog_ext_lmtp_dir", value, expand,
				      error_r))
		return false;
	std::string error;
	if (!expand(value, dir_r, error)) {
		error_r = std::string("rawlog_ext_lmtp_dir=") + value + ": " +
			error;
		return false;
	}
	return true;
}

} // namespace

bool lmtp_connection_settings(struct client *client,
			      const LmtpConnectionVars &vars,
			      Settings &settings_r, std::string &error_r,
			      std::string &dir_error_r)
{
	if (!settings_parse([client](const char *name) {
			return mail_user_set_plugin_getenv(client->user_set,
							   name);
		}, settings_r, error_r))
		return false;
	if (settings_r.lmtp_dir.empty())
		return true;
	std::string dir;
	if (!expand_connection_dir(vars, settings_r.lmtp_dir.c_str(), dir,
				   dir_error_r))
		dir.clear();
	settings_r.lmtp_dir = dir;
	return true;
}

} // namespace rawlog_ext
