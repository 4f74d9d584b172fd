// doveadm cannot read every setting a session would have through its own
// settings: 2.3 has no plugin {} without a user, and on both lines only
// doveadm's own protocol's filters apply (2.3: a doveadm run with -c has
// its configuration in its environment; 2.4 drops other protocols'
// filters when it reads the configuration). So doveadm rawlog asks the
// doveconf beside this doveadm, with the configuration doveadm read.
#ifndef RAWLOG_EXT_DOVECONF_RUN_HH
#define RAWLOG_EXT_DOVECONF_RUN_HH

#include "compat.hh"

#include <string>
#include <vector>

namespace rawlog_ext {

// Runs doveconf -c <doveadm's config> ARGS; out_r: its stdout.
bool doveconf_run(const std::vector<std::string> &args, std::string &out_r,
		  std::string &error_r);

} // namespace rawlog_ext

#endif
