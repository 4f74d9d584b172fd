// Dovecot 2.3: the plugin {} values from doveconf (see doveconf.hh).
#include "../global-dirs.hh"
#include "../doveconf-run.hh"
#include "doveconf.hh"

namespace rawlog_ext {

bool doveconf_plugin_value(const char *name, std::string &value_r,
			   std::string &error_r)
{
	if (!doveconf_run({ "-h", std::string("plugin/") + name }, value_r,
			  error_r))
		return false;
	while (!value_r.empty() &&
	       (value_r.back() == '\n' || value_r.back() == '\r'))
		value_r.pop_back();
	return true;
}

bool configured_log_dirs(struct event *, std::vector<ConfiguredDir> &dirs_r,
			 std::string &error_r)
{
	for (const char *setting : { "rawlog_ext_dir", "rawlog_ext_lmtp_dir" }) {
		std::string value;
		if (!doveconf_plugin_value(setting, value, error_r))
			return false;
		if (!value.empty())
			dirs_r.push_back({ setting, value });
	}
	return true;
}

} // namespace rawlog_ext
