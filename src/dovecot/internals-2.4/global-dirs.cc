// Dovecot 2.4: the settings of doveadm's settings event, unexpanded, as a
// connection reads them before any user is known.
#include "../global-dirs.hh"
#include "../user-settings.hh"

namespace rawlog_ext {

bool configured_log_dirs(struct event *event,
			 std::vector<ConfiguredDir> &dirs_r,
			 std::string &error_r)
{
	ConnectionSettingsSource source = { event, nullptr };
	Settings settings;
	if (!connection_settings_get(source, settings, error_r))
		return false;
	if (!settings.dir.empty())
		dirs_r.push_back({ "rawlog_ext_dir", settings.dir });
	if (!settings.lmtp_dir.empty())
		dirs_r.push_back({ "rawlog_ext_lmtp_dir", settings.lmtp_dir });
	return true;
}

} // namespace rawlog_ext
