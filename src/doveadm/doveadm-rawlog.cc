// lib10_doveadm_rawlog_ext_plugin.so, in $moduledir/doveadm (the one
// directory doveadm loads plugins from, on both lines): the runtime
// switch of issue #15 over the control dict.
//   doveadm rawlog enable [-u USER|-A|-F FILE] [--for DURATION] [--max-size SIZE]
//   doveadm rawlog disable [-u USER|-A|-F FILE]
//   doveadm rawlog list
// enable and disable are mail commands: doveadm looks the user up (an
// unknown one: "User doesn't exist", exit 67) and the user's own settings,
// userdb fields included, name the dict. Both also keep the index entry
// (control_index_key) that list reads on a dict that cannot iterate
// (redis): read, changed and written with the user's keys in one
// transaction, so two admins writing at once may leave a user out of the
// index (or an old one in it, which list skips), never a user's own keys.
#include "../dovecot/compat.hh"
#include "../dovecot/control-dict.hh"
#include "../core/control.hh"
#include "../core/settings.hh"

#include "doveadm-rawlog.hh"

DOVECOT_EXTERN_C_BEGIN
#include "module-dir.h"
DOVECOT_EXTERN_C_END

#include <map>
#include <memory>
#include <string>

using namespace rawlog_ext;

namespace {

const time_t default_duration = 3600;

struct EnableContext {
	struct doveadm_mail_cmd_context ctx;
	time_t duration;
	uint64_t max_bytes;
	bool bad_option;	// said why in init(): nobody is changed
};

// The user's control dict, or nullptr with the command failed and why.
std::unique_ptr<ControlDict> user_dict(struct doveadm_mail_cmd_context *ctx,
				       struct mail_user *user)
{
	std::unique_ptr<ControlDict> dict;
	std::string error;
	int ret = ControlDict::open(user, user->event, dict, error);
	if (ret == 0) {
		i_error("rawlog: no control dict is configured for user %s "
			"(rawlog_ext_control_dict, 2.4: rawlog_ext_control { dict ... })",
			user->username);
		ctx->exit_code = EX_CONFIG;
	} else if (ret < 0) {
		i_error("rawlog: %s", error.c_str());
		ctx->exit_code = EX_TEMPFAIL;
	}
	return dict;
}

int cmd_enable_run(struct doveadm_mail_cmd_context *ctx,
		   struct mail_user *user)
{
	return guarded("rawlog", ctx, [&] {
		auto *ectx = reinterpret_cast<EnableContext *>(ctx);
		// init() said why and set the exit code.
		if (ectx->bad_option)
			return -1;
		std::unique_ptr<ControlDict> dict = user_dict(ctx, user);
		if (dict == nullptr)
			return -1;
		Enablement e;
		e.expires = time(nullptr) + ectx->duration;
		e.max_bytes = ectx->max_bytes;
		std::string index, error;
		int found = dict->lookup(control_index_key, index, error);
		if (found < 0) {
			i_error("rawlog: enabling %s failed: %s", user->username,
				error.c_str());
			ctx->exit_code = EX_TEMPFAIL;
			return -1;
		}
		index = control_index_add(found > 0 ? index : "", user->username);
		// A new enablement starts a new budget.
		const std::string value = control_value(e), zero = "0";
		const ControlDict::Change changes[] = {
			{ control_enabled_key(user->username), &value },
			{ control_used_key(user->username), &zero },
			{ control_index_key, &index },
		};
		if (dict->change(changes, 3, error) < 0) {
			i_error("rawlog: enabling %s failed: %s", user->username,
				error.c_str());
			ctx->exit_code = EX_TEMPFAIL;
			return -1;
		}
		doveadm_print(user->username);
		doveadm_print(utc_time(e.expires).c_str());
		doveadm_print(e.max_bytes == 0 ? "-" :
			      std::to_string(e.max_bytes).c_str());
		return 0;
	});
}

// Options are read once, before any user: a bad one changes nothing.
// Not i_fatal(): under doveadm-server that would end the server process.
void cmd_enable_init(RAWLOG_EXT_DOVEADM_INIT_ARGS)
{
	auto *ectx = reinterpret_cast<EnableContext *>(ctx);
	ectx->duration = default_duration;
	if (guarded("rawlog", ctx, [&] {
		const char *value;
		if (doveadm_cmd_param_str(ctx->cctx, "for", &value) &&
		    !parse_duration(value, ectx->duration)) {
			i_error("rawlog enable: --for %s: expected a duration "
				"such as 90s, 30m, 1h or 2d", value);
			ectx->bad_option = true;
		} else if (doveadm_cmd_param_str(ctx->cctx, "max-size", &value) &&
			   (!parse_size(value, ectx->max_bytes) ||
			    ectx->max_bytes == 0)) {
			i_error("rawlog enable: --max-size %s: expected a size "
				"such as 512k, 100M or 2G", value);
			ectx->bad_option = true;
		}
		if (ectx->bad_option)
			ctx->exit_code = EX_USAGE;
		return 0;
	}) < 0)
		ectx->bad_option = true;	// exit_code: EX_TEMPFAIL
	doveadm_print_header("user", "User", no_flags);
	doveadm_print_header("until", "Until", no_flags);
	doveadm_print_header("max-size", "Max size",
			     DOVEADM_PRINT_HEADER_FLAG_RIGHT_JUSTIFY);
}

struct doveadm_mail_cmd_context *cmd_enable_alloc_impl()
{
	EnableContext *ectx = doveadm_mail_cmd_alloc(EnableContext);
	ectx->ctx.v.init = cmd_enable_init;
	ectx->ctx.v.run = cmd_enable_run;
	doveadm_take_options(&ectx->ctx);
	doveadm_print_init(DOVEADM_PRINT_TYPE_TABLE);
	return &ectx->ctx;
}

int cmd_disable_run(struct doveadm_mail_cmd_context *ctx,
		    struct mail_user *user)
{
	return guarded("rawlog", ctx, [&] {
		std::unique_ptr<ControlDict> dict = user_dict(ctx, user);
		if (dict == nullptr)
			return -1;
		std::string index, error;
		int found = dict->lookup(control_index_key, index, error);
		if (found < 0) {
			i_error("rawlog: disabling %s failed: %s",
				user->username, error.c_str());
			ctx->exit_code = EX_TEMPFAIL;
			return -1;
		}
		index = control_index_remove(found > 0 ? index : "",
					     user->username);
		const ControlDict::Change changes[] = {
			{ control_enabled_key(user->username), nullptr },
			{ control_used_key(user->username), nullptr },
			// The last one out removes the entry.
			{ control_index_key, index.empty() ? nullptr : &index },
		};
		if (dict->change(changes, found > 0 ? 3 : 2, error) < 0) {
			i_error("rawlog: disabling %s failed: %s",
				user->username, error.c_str());
			ctx->exit_code = EX_TEMPFAIL;
			return -1;
		}
		return 0;
	});
}

struct doveadm_mail_cmd_context *cmd_disable_alloc_impl()
{
	struct doveadm_mail_cmd_context *ctx =
		doveadm_mail_cmd_alloc(struct doveadm_mail_cmd_context);
	ctx->v.run = cmd_disable_run;
	return ctx;
}

// A dict that cannot iterate (iterate() failed with error): the entries of
// the users in the index, looked up one by one. A user in the index without
// an enabled/ entry is left out (an index line a racing disable left
// behind). False with error_r on a failed lookup.
bool index_entries(ControlDict &dict, std::string &error_r,
		   std::map<std::string, std::string> &enabled,
		   std::map<std::string, std::string> &used)
{
	if (!control_dict_unsupported(error_r))
		i_warning("rawlog list: cannot iterate the dict (%s): listing "
			  "the users in %s", error_r.c_str(), control_index_key);
	enabled.clear();
	used.clear();
	std::string index, value;
	int ret = dict.lookup(control_index_key, index, error_r);
	if (ret <= 0)
		return ret == 0;
	for (const std::string &user : control_index_users(index)) {
		ret = dict.lookup(control_enabled_key(user), value, error_r);
		if (ret < 0)
			return false;
		if (ret == 0)
			continue;
		enabled[user] = value;
		ret = dict.lookup(control_used_key(user), value, error_r);
		if (ret < 0)
			return false;
		if (ret > 0)
			used[user] = value;
	}
	return true;
}

// Every enablement in the configuration's dict, with its state now:
// iterated where the dict can, from the index where it cannot.
void cmd_list_impl(struct doveadm_cmd_context *cctx)
{
	(void)guarded("rawlog", nullptr, [&] {
		doveadm_print_init(DOVEADM_PRINT_TYPE_TABLE);
		std::unique_ptr<ControlDict> dict;
		std::string error;
		struct dict *raw = nullptr;
		int ret = control_dict_init_global(cctx, &raw, error);
		if (ret > 0)
			dict = ControlDict::adopt(raw, "");
		if (ret <= 0) {
			if (ret == 0)
				i_error("rawlog list: no control dict is "
					"configured (rawlog_ext_control_dict, "
					"2.4: rawlog_ext_control { dict ... })");
			else
				i_error("rawlog list: %s", error.c_str());
			doveadm_exit_code = ret == 0 ? EX_CONFIG : EX_TEMPFAIL;
			return -1;
		}
		std::map<std::string, std::string> enabled, used;
		bool ok = dict->iterate(control_enabled_prefix,
			[&](const char *key, const char *value) {
				std::string user;
				if (control_key_user(key, user))
					enabled[user] = value;
			}, error) &&
			dict->iterate(control_used_prefix,
			[&](const char *key, const char *value) {
				std::string user;
				if (control_key_user(key, user))
					used[user] = value;
			}, error);
		if (!ok && !index_entries(*dict, error, enabled, used)) {
			i_error("rawlog list: %s", error.c_str());
			doveadm_exit_code = EX_TEMPFAIL;
			return -1;
		}
		doveadm_print_header("user", "User", no_flags);
		doveadm_print_header("state", "State", no_flags);
		doveadm_print_header("until", "Until", no_flags);
		doveadm_print_header("max-size", "Max size",
				     DOVEADM_PRINT_HEADER_FLAG_RIGHT_JUSTIFY);
		doveadm_print_header("used", "Used",
				     DOVEADM_PRINT_HEADER_FLAG_RIGHT_JUSTIFY);
		const time_t now = time(nullptr);
		for (const auto &entry : enabled) {
			auto u = used.find(entry.first);
			uint64_t left;
			ControlState state = control_state(&entry.second,
				u == used.end() ? nullptr : &u->second, now, left);
			Enablement e;
			bool parsed = control_value_parse(entry.second, e);
			doveadm_print(entry.first.c_str());
			doveadm_print(control_state_name(state));
			doveadm_print(parsed ? utc_time(e.expires).c_str() : "-");
			doveadm_print(!parsed || e.max_bytes == 0 ? "-" :
				      std::to_string(e.max_bytes).c_str());
			doveadm_print(u == used.end() ? "0" : u->second.c_str());
		}
		return 0;
	});
}

} // namespace

// The command table is C (doveadm-rawlog-cmds.c): its headers' macros are.
extern "C" {

struct doveadm_mail_cmd_context *rawlog_ext_cmd_enable_alloc(void)
{
	return cmd_enable_alloc_impl();
}

struct doveadm_mail_cmd_context *rawlog_ext_cmd_disable_alloc(void)
{
	return cmd_disable_alloc_impl();
}

void rawlog_ext_cmd_list(struct doveadm_cmd_context *cctx)
{
	cmd_list_impl(cctx);
}

extern struct doveadm_cmd_ver2 rawlog_ext_doveadm_commands[];
extern const unsigned int rawlog_ext_doveadm_command_count;

#define RAWLOG_EXT_EXPORT __attribute__((visibility("default")))

RAWLOG_EXT_EXPORT extern const char *doveadm_rawlog_ext_plugin_version;
RAWLOG_EXT_EXPORT void doveadm_rawlog_ext_plugin_init(struct module *module);
RAWLOG_EXT_EXPORT void doveadm_rawlog_ext_plugin_deinit(void);

const char *doveadm_rawlog_ext_plugin_version = DOVECOT_ABI_VERSION;

void doveadm_rawlog_ext_plugin_init(struct module *)
{
	for (unsigned int i = 0; i < rawlog_ext_doveadm_command_count; i++)
		doveadm_cmd_register_ver2(&rawlog_ext_doveadm_commands[i]);
}

void doveadm_rawlog_ext_plugin_deinit(void)
{
}

} // extern "C"
