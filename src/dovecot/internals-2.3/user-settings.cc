// Dovecot 2.3: settings are the plugin {} environment (userdb fields
// included), already expanded by Dovecot; the unexpanded value is checked
// for variables that expand to nothing.
#include "../user-settings.hh"
#include "../control-dict.hh"
#include "../../core/naming.hh"
#include "doveconf.hh"

#include <cerrno>
#include <climits>
#include <cstring>
#include <sys/wait.h>
#include <unistd.h>

DOVECOT_EXTERN_C_BEGIN
#include "var-expand.h"
#include "dict.h"
#include "master-service.h"
#include "master-service-settings.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {

namespace {

// 2.3's var_expand*() return 1 on success, 0 on an unknown variable.
bool expand_one(const std::string &tmpl, const struct var_expand_table *table,
		const struct var_expand_func_table *funcs, void *context,
		std::string &value_r, std::string &error_r)
{
	string_t *str = t_str_new(256);
	const char *error;
	if (var_expand_with_funcs(str, tmpl.c_str(), table, funcs, context,
				  &error) <= 0) {
		error_r = error;
		return false;
	}
	value_r = str_c(str);
	return true;
}

// rawlog_ext_dir as configured, before Dovecot expanded it: every
// variable in it must have a value for this user.
bool check_dir_variables(struct mail_user *user, std::string &error_r)
{
	const char *tmpl = mail_user_set_plugin_getenv(user->unexpanded_set,
						       "rawlog_ext_dir");
	if (tmpl == nullptr)
		return true;
	return check_template_variables("rawlog_ext_dir", tmpl,
		[user](const std::string &variable, std::string &value_r,
		       std::string &error_r) {
			return expand_one(variable,
					  mail_user_var_expand_table(user),
					  mail_user_var_expand_func_table,
					  user, value_r, error_r);
		}, error_r);
}

} // namespace

bool user_settings_get(struct mail_user *user, Settings &settings_r,
		       std::string &error_r)
{
	if (!settings_parse([user](const char *name) {
			return mail_user_plugin_getenv(user, name);
		}, settings_r, error_r))
		return false;
	return settings_r.dir.empty() || check_dir_variables(user, error_r);
}

bool connection_settings_get(const ConnectionSettingsSource &source,
			     Settings &settings_r, std::string &error_r)
{
	const struct mail_user_settings *set = source.user_set;
	return settings_parse([set](const char *name) {
			return mail_user_set_plugin_getenv(set, name);
		}, settings_r, error_r);
}

bool expand_dir_template(const char *setting, const std::string &tmpl,
			 const TemplateVariable *vars, std::string &dir_r,
			 std::string &error_r)
{
	std::vector<struct var_expand_table> table;
	for (const TemplateVariable *var = vars; var->name != nullptr; var++)
		table.push_back({ var->key, var->value, var->name });
	table.push_back({ '\0', nullptr, nullptr });
	auto expand = [&table](const std::string &t, std::string &value_r,
			       std::string &error_r) {
		return expand_one(t, table.data(), nullptr, nullptr, value_r,
				  error_r);
	};
	if (!check_template_variables(setting, tmpl, expand, error_r))
		return false;
	std::string error;
	if (!expand(tmpl, dir_r, error)) {
		error_r = std::string(setting) + "=" + tmpl + ": " + error;
		return false;
	}
	return true;
}

// Without a user (doveadm's commands without -u), 2.3 has no public way
// to read plugin {} settings in doveadm: ask the doveconf beside this
// doveadm, with the configuration doveadm read.
bool doveconf_plugin_value(const char *name, std::string &value_r,
			   std::string &error_r)
{
	const std::string key = std::string("plugin/") + name;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		error_r = std::string("readlink(/proc/self/exe) failed: ") +
			strerror(errno);
		return false;
	}
	exe[n] = '\0';
	std::string doveconf(exe);
	doveconf = doveconf.substr(0, doveconf.rfind('/') + 1) + "doveconf";
	const char *config = master_service_get_config_path(master_service);
	int fds[2];
	if (pipe(fds) < 0) {
		error_r = std::string("pipe() failed: ") + strerror(errno);
		return false;
	}
	pid_t pid = fork();
	if (pid < 0) {
		error_r = std::string("fork() failed: ") + strerror(errno);
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl(doveconf.c_str(), "doveconf", "-c", config, "-h",
		      key.c_str(), (char *)nullptr);
		_exit(127);
	}
	close(fds[1]);
	std::string out;
	char buf[1024];
	for (;;) {
		ssize_t r = read(fds[0], buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		out.append(buf, (size_t)r);
	}
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) ;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		error_r = doveconf + " -h " + key + " failed";
		return false;
	}
	while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
		out.pop_back();
	value_r = out;
	return true;
}

int control_dict_init(struct mail_user *user, struct event *event,
		      struct dict **dict_r, std::string &error_r)
{
	std::string uri;
	if (user != nullptr) {
		const char *value =
			mail_user_plugin_getenv(user, "rawlog_ext_control_dict");
		uri = value != nullptr ? value : "";
	} else if (!doveconf_plugin_value("rawlog_ext_control_dict", uri,
					  error_r)) {
		return -1;
	}
	if (uri.empty())
		return 0;
	struct dict_settings set;
	i_zero(&set);
	set.base_dir = user != nullptr ? user->set->base_dir :
		master_service_settings_get(master_service)->base_dir;
	set.event_parent = event;
	const char *error;
	if (dict_init(uri.c_str(), &set, dict_r, &error) < 0) {
		error_r = "rawlog_ext_control_dict: dict_init(" + uri +
			") failed: " + error;
		return -1;
	}
	return 1;
}

} // namespace rawlog_ext
