// What the doveadm rawlog commands share (doveadm-rawlog*.cc): doveadm's
// headers, the per-line differences, the guard every command body runs
// in, and how times are printed.
#ifndef RAWLOG_EXT_DOVEADM_RAWLOG_HH
#define RAWLOG_EXT_DOVEADM_RAWLOG_HH

#include "../dovecot/compat.hh"

DOVECOT_EXTERN_C_BEGIN
#include "doveadm.h"
#include "doveadm-cmd.h"
#include "doveadm-mail.h"
#include "doveadm-print.h"
DOVECOT_EXTERN_C_END

#include "doveadm-line.hh"	// per Dovecot line

#include <sysexits.h>
#include <ctime>
#include <exception>
#include <string>

namespace rawlog_ext {
namespace {

const enum doveadm_print_header_flags no_flags =
	static_cast<enum doveadm_print_header_flags>(0);

// "YYYY-MM-DDTHH:MM:SSZ", or the number if it is no such time.
inline std::string utc_time(time_t t)
{
	struct tm tm;
	char buf[32];
	if (gmtime_r(&t, &tm) == nullptr ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return std::to_string((long long)t);
	return buf;
}

// A failure of ours must not take doveadm down: say it ("<command>: why"),
// exit tempfail (the mail command's exit code, or doveadm's without one).
template <typename Body>
inline int guarded(const char *command, struct doveadm_mail_cmd_context *ctx,
	    Body &&body) noexcept
{
	try {
		return body();
	} catch (const std::exception &e) {
		i_error("%s: %s", command, e.what());
	} catch (...) {
		i_error("%s: unexpected failure", command);
	}
	if (ctx != nullptr)
		ctx->exit_code = EX_TEMPFAIL;
	else
		doveadm_exit_code = EX_TEMPFAIL;
	return -1;
}

} // namespace
} // namespace rawlog_ext

#endif
