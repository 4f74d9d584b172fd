/* doveadm rawlog's command table, in C: doveadm's parameter macros are
   compound literals with int flags, which C++ refuses. The commands are in
   doveadm-rawlog.cc. */
#include "lib.h"
#include "doveadm.h"
#include "doveadm-cmd.h"
#include "doveadm-mail.h"

struct doveadm_mail_cmd_context *rawlog_ext_cmd_enable_alloc(void);
struct doveadm_mail_cmd_context *rawlog_ext_cmd_disable_alloc(void);
void rawlog_ext_cmd_list(struct doveadm_cmd_context *cctx);
struct doveadm_mail_cmd_context *rawlog_ext_cmd_status_alloc(void);
void rawlog_ext_cmd_prune(struct doveadm_cmd_context *cctx);

extern struct doveadm_cmd_ver2 rawlog_ext_doveadm_commands[];
extern const unsigned int rawlog_ext_doveadm_command_count;

struct doveadm_cmd_ver2 rawlog_ext_doveadm_commands[] = {
	{
		.mail_cmd = rawlog_ext_cmd_enable_alloc,
		.name = "rawlog enable",
		.usage = DOVEADM_CMD_MAIL_USAGE_PREFIX
			"[--for <duration>] [--max-size <size>]",
DOVEADM_CMD_PARAMS_START
DOVEADM_CMD_MAIL_COMMON
DOVEADM_CMD_PARAM('t', "for", CMD_PARAM_STR, 0)
DOVEADM_CMD_PARAM('s', "max-size", CMD_PARAM_STR, 0)
DOVEADM_CMD_PARAMS_END
	},
	{
		.mail_cmd = rawlog_ext_cmd_disable_alloc,
		.name = "rawlog disable",
		.usage = DOVEADM_CMD_MAIL_USAGE_PREFIX,
DOVEADM_CMD_PARAMS_START
DOVEADM_CMD_MAIL_COMMON
DOVEADM_CMD_PARAMS_END
	},
	{
		.mail_cmd = rawlog_ext_cmd_status_alloc,
		.name = "rawlog status",
		.usage = DOVEADM_CMD_MAIL_USAGE_PREFIX,
DOVEADM_CMD_PARAMS_START
DOVEADM_CMD_MAIL_COMMON
DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = rawlog_ext_cmd_list,
		.name = "rawlog list",
		.usage = "",
DOVEADM_CMD_PARAMS_START
DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = rawlog_ext_cmd_prune,
		.name = "rawlog prune",
		.usage = "[--older-than <duration>] [--max-total <size>] "
			"[--dry-run] [<dir> ...]",
DOVEADM_CMD_PARAMS_START
DOVEADM_CMD_PARAM('\0', "older-than", CMD_PARAM_STR, 0)
DOVEADM_CMD_PARAM('\0', "max-total", CMD_PARAM_STR, 0)
DOVEADM_CMD_PARAM('\0', "dry-run", CMD_PARAM_BOOL, 0)
DOVEADM_CMD_PARAM('\0', "dir", CMD_PARAM_ARRAY, CMD_PARAM_FLAG_POSITIONAL)
DOVEADM_CMD_PARAMS_END
	},
};
const unsigned int rawlog_ext_doveadm_command_count =
	N_ELEMENTS(rawlog_ext_doveadm_commands);
