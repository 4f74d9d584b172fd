// Dovecot 2.3: settings are the plugin {} environment (userdb fields
// included), already expanded by Dovecot; the unexpanded value is checked
// for variables that expand to nothing.
#include "../user-settings.hh"
#include "../control-dict.hh"
#include "../../core/naming.hh"

#include <cstring>
#include <vector>

DOVECOT_EXTERN_C_BEGIN
#include "var-expand.h"
#include "dict.h"
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

bool expand_user_dir(struct mail_user *user, const char *service,
		     const std::string &tmpl, std::string &dir_r,
		     std::string &error_r)
{
	// The user's variables, with service as %s.
	std::vector<struct var_expand_table> table;
	for (const struct var_expand_table *t = mail_user_var_expand_table(user);
	     t->key != '\0' || t->long_key != nullptr; t++) {
		struct var_expand_table entry = *t;
		if (entry.key == 's')
			entry.value = service;
		table.push_back(entry);
	}
	table.push_back({ '\0', nullptr, nullptr });
	auto expand = [&](const std::string &t, std::string &value_r,
			  std::string &error_r) {
		return expand_one(t, table.data(),
				  mail_user_var_expand_func_table, user,
				  value_r, error_r);
	};
	if (!check_template_variables("rawlog_ext_dir", tmpl, expand, error_r))
		return false;
	std::string error;
	if (!expand(tmpl, dir_r, error)) {
		error_r = "rawlog_ext_dir=" + tmpl + ": " + error;
		return false;
	}
	return true;
}

int control_dict_init(struct mail_user *user, struct event *event,
		      struct dict **dict_r, std::string &error_r)
{
	const char *uri = mail_user_plugin_getenv(user, "rawlog_ext_control_dict");
	if (uri == nullptr || *uri == '\0')
		return 0;
	struct dict_settings set;
	i_zero(&set);
	set.base_dir = user->set->base_dir;
	set.event_parent = event;
	const char *error;
	if (dict_init(uri, &set, dict_r, &error) < 0) {
		error_r = std::string("rawlog_ext_control_dict: dict_init(") +
			uri + ") failed: " + error;
		return -1;
	}
	return 1;
}

} // namespace rawlog_ext
