// Dovecot 2.4: settings through settings_get() with the info in
// settings-info.c (userdb fields are overrides there already). Values are
// fetched unexpanded: rawlog_ext_dir is expanded here, so that a variable
// expanding to nothing, or a 2.3 %-letter (which 2.4 would keep as the
// literal text "%u"), is refused instead of logging into a shared
// directory. The template is read with 2.4's grammar ("%%{" is the text
// "%{", any other '%' outside an expression is itself).
#include "../user-settings.hh"
#include "../control-dict.hh"
#include "../../core/naming.hh"

#include <cstring>
#include <vector>

DOVECOT_EXTERN_C_BEGIN
#include "settings.h"
#include "var-expand.h"
#include "dict.h"
#include "settings-info.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {

namespace {

const struct setting_parser_info &info = rawlog_ext_setting_parser_info;

// The value of one setting in a struct settings_get() filled.
const char *setting_value(const struct rawlog_ext_settings *set,
			  const char *name)
{
	for (const struct setting_define *def = info.defines;
	     def->key != nullptr; def++) {
		if (strcmp(def->key, name) == 0) {
			return *reinterpret_cast<const char *const *>(
				reinterpret_cast<const char *>(set) +
				def->offset);
		}
	}
	return nullptr;
}

bool settings_read(struct event *event, Settings &settings_r,
		   std::string &error_r)
{
	const struct rawlog_ext_settings *set = nullptr;
	const char *error;
	// The settings_get() macro casts through void *, which C++ refuses.
	if ((settings_get)(event, &info, SETTINGS_GET_FLAG_NO_EXPAND,
			   __FILE__, __LINE__,
			   reinterpret_cast<const void **>(&set),
			   &error) < 0) {
		error_r = error;
		return false;
	}
	bool ok = settings_parse([set](const char *name) {
			return setting_value(set, name);
		}, settings_r, error_r);
	settings_free(set);
	return ok;
}

// 2.3's one-letter variables, with what 2.4 calls them.
struct LegacyVariable {
	char key;
	const char *spelling;
};
const LegacyVariable legacy_variables[] = {
	{ 'u', "%{user}" },
	{ 'n', "%{user | username}" },
	{ 'd', "%{user | domain}" },
	{ 'h', "%{home}" },
	{ 's', "%{service}" },
	{ 'l', "%{local_ip}" },
	{ 'r', "%{remote_ip}" },
	{ 'a', "%{local_port}" },
	{ 'b', "%{remote_port}" },
	{ 'p', "%{process:pid}" },
	{ 'i', "%{process:uid}" },
};

// A 2.3 variable ("%u", "%Ln", "%1.2d"): 2.4 only knows %{...}.
bool check_no_legacy_variables(const char *setting, const std::string &tmpl,
			       const TemplateVariable *vars,
			       std::string &error_r)
{
	std::string keys;
	for (const TemplateVariable *var = vars;
	     var != nullptr && var->name != nullptr; var++)
		keys += var->key;
	for (const LegacyVariable &legacy : legacy_variables)
		keys += legacy.key;
	for (const std::string &variable : legacy_variables_24(tmpl, keys)) {
		char key = variable.back();
		std::string spelling;
		for (const TemplateVariable *var = vars;
		     var != nullptr && var->name != nullptr; var++) {
			if (var->key == key)
				spelling = std::string("%{") + var->name + "}";
		}
		for (const LegacyVariable &legacy : legacy_variables) {
			if (spelling.empty() && legacy.key == key)
				spelling = legacy.spelling;
		}
		error_r = std::string(setting) + "=" + tmpl + ": " + variable +
			" is Dovecot 2.3 syntax: " +
			(spelling.empty() ? std::string("use the %{name} form") :
			 "use " + spelling);
		return false;
	}
	return true;
}

// 2.4's var_expand() returns 0 on success.
bool expand_one(const std::string &tmpl,
		const struct var_expand_params *params,
		std::string &value_r, std::string &error_r)
{
	string_t *str = t_str_new(256);
	const char *error;
	if (var_expand(str, tmpl.c_str(), params, &error) < 0) {
		error_r = error;
		return false;
	}
	value_r = str_c(str);
	return true;
}

// Every variable 2.4's parser finds (also inside another expression's
// filters) by its own value: an identity variable with a '/' is refused.
bool check_program_variables(const char *setting, const std::string &tmpl,
			     const ExpandVariable &expand,
			     std::string &error_r)
{
	struct var_expand_program *program;
	const char *error;
	if (var_expand_program_create(tmpl.c_str(), &program, &error) < 0) {
		error_r = std::string(setting) + "=" + tmpl + ": " + error;
		return false;
	}
	std::vector<std::string> variables;
	for (const char *const *name = var_expand_program_variables(program);
	     name != nullptr && *name != nullptr; name++)
		variables.push_back(std::string("%{") + *name + "}");
	var_expand_program_free(&program);
	std::vector<std::string> identity;
	for (const std::string &variable : variables) {
		if (identity_variable(variable))
			identity.push_back(variable);
	}
	return check_variables(setting, tmpl, identity, expand, error_r);
}

bool expand_with(const char *setting, const std::string &tmpl,
		 const TemplateVariable *vars,
		 const struct var_expand_params *params, std::string &dir_r,
		 std::string &error_r)
{
	if (!check_no_legacy_variables(setting, tmpl, vars, error_r))
		return false;
	auto expand = [params](const std::string &t, std::string &value_r,
			       std::string &error_r) {
		return expand_one(t, params, value_r, error_r);
	};
	if (!check_variables(setting, tmpl, template_expressions_24(tmpl),
			     expand, error_r) ||
	    !check_program_variables(setting, tmpl, expand, error_r))
		return false;
	std::string error;
	if (!expand(tmpl, dir_r, error)) {
		error_r = std::string(setting) + "=" + tmpl + ": " + error;
		return false;
	}
	// "%%{user}" is the text "%{user}": one directory for everyone.
	if (dir_r.find("%{") != std::string::npos) {
		error_r = std::string(setting) + "=" + tmpl + " expands to " +
			dir_r + ", which still has a \"%{\": a variable "
			"written as text (\"%%{\") would log everyone into "
			"one directory";
		return false;
	}
	return true;
}

} // namespace

bool user_settings_get(struct mail_user *user, Settings &settings_r,
		       std::string &error_r)
{
	if (!settings_read(user->event, settings_r, error_r))
		return false;
	if (settings_r.dir.empty())
		return true;
	std::string tmpl = settings_r.dir;
	return expand_with("rawlog_ext_dir", tmpl, nullptr,
			   mail_user_var_expand_params(user), settings_r.dir,
			   error_r);
}

bool connection_settings_get(const ConnectionSettingsSource &source,
			     Settings &settings_r, std::string &error_r)
{
	return settings_read(source.event, settings_r, error_r);
}

bool expand_dir_template(const char *setting, const std::string &tmpl,
			 const TemplateVariable *vars, std::string &dir_r,
			 std::string &error_r)
{
	std::vector<struct var_expand_table> table;
	for (const TemplateVariable *var = vars; var->name != nullptr; var++) {
		struct var_expand_table entry = {};
		entry.key = var->name;
		entry.value = var->value;
		table.push_back(entry);
	}
	table.push_back({});
	struct var_expand_params params = {};
	params.table = table.data();
	return expand_with(setting, tmpl, vars, &params, dir_r, error_r);
}

bool expand_user_dir(struct mail_user *user, const char *service,
		     const std::string &tmpl, std::string &dir_r,
		     std::string &error_r)
{
	// The user's variables, with service as %{service}/%{protocol}.
	struct var_expand_params params = *mail_user_var_expand_params(user);
	std::vector<struct var_expand_table> table;
	if (params.table != nullptr) {
		for (const struct var_expand_table *t = params.table;
		     t->key != nullptr; t++) {
			struct var_expand_table entry = *t;
			if (strcmp(t->key, "service") == 0 ||
			    strcmp(t->key, "protocol") == 0) {
				entry.value = service;
				entry.func = nullptr;
			}
			table.push_back(entry);
		}
		table.push_back({});
		params.table = table.data();
	}
	return expand_with("rawlog_ext_dir", tmpl, nullptr, &params, dir_r,
			   error_r);
}

namespace {

// The names of the dicts an event's settings see (its dict { } list).
bool dict_names(struct event *event, std::vector<std::string> &names_r,
		std::string &error_r)
{
	const struct dict_settings *set = nullptr;
	const char *error;
	if ((settings_get)(event, &dict_setting_parser_info,
			   static_cast<enum settings_get_flags>(0),
			   __FILE__, __LINE__,
			   reinterpret_cast<const void **>(&set), &error) < 0) {
		error_r = error;
		return false;
	}
	names_r.clear();
	if (array_is_created(&set->dicts)) {
		const char *name;
		array_foreach_elem(&set->dicts, name)
			names_r.emplace_back(name);
	}
	settings_free(set);
	return true;
}

} // namespace

int control_dict_init(struct mail_user *user, struct event *event,
		      struct dict **dict_r, std::string &error_r)
{
	// The dict inside rawlog_ext_control { }, as last_login and
	// quota_clone read theirs. A named filter inherits a dict from the
	// top level: one there (for something else) is not a control dict,
	// or every user not enabled would stop being logged.
	struct event *parent = user != nullptr ? user->event : event;	// doveadm: its event
	struct event *filter = event_create(parent);
	settings_event_add_filter_name(filter, "rawlog_ext_control");
	std::vector<std::string> inside, outside;
	std::string error;
	int ret;
	if (!dict_names(filter, inside, error) ||
	    !dict_names(parent, outside, error)) {
		error_r = "rawlog_ext_control: " + error;
		ret = -1;
	} else if (inside.empty() || inside == outside) {
		ret = 0;
	} else {
		const char *init_error = nullptr;
		ret = dict_init_auto(filter, dict_r, &init_error);
		if (ret < 0)
			error_r = std::string("rawlog_ext_control: ") +
				(init_error != nullptr ? init_error :
				 "dict_init_auto() failed");
		ret = ret < 0 ? -1 : ret;
	}
	event_unref(&filter);
	return ret;
}

} // namespace rawlog_ext
