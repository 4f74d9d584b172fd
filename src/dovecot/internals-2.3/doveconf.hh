// Dovecot 2.3: a plugin {} setting without a user, from the doveconf beside
// this doveadm (defined in global-dirs.cc; doveadm only).
#ifndef RAWLOG_EXT_DOVECONF_HH
#define RAWLOG_EXT_DOVECONF_HH

#include <string>

namespace rawlog_ext {

// `doveconf -c <doveadm's config> -h plugin/<name>`: "" when unset. False,
// error_r says why, when doveconf cannot be run or fails.
bool doveconf_plugin_value(const char *name, std::string &value_r,
			   std::string &error_r);

} // namespace rawlog_ext

#endif
