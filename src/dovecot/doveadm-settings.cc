#include "doveadm-settings.hh"
#include "doveconf-run.hh"
#include "user-settings.hh"

#include <cstring>
#include <map>
#include <vector>

DOVECOT_EXTERN_C_BEGIN
#include "dict.h"
#include "doveadm.h"
#include "doveadm-cmd.h"
#include "doveadm-mail.h"
DOVECOT_EXTERN_C_END

#include "doveadm-line.hh"	// per Dovecot line

namespace rawlog_ext {

namespace {

// doveconf's output: "key = value" lines, "name {" ... "}" blocks.
struct DoveconfOutput {
	std::map<std::string, std::string> top, plugin;
	std::vector<std::string> mail_plugins;	// a 2.4 boollist's yes names
	bool mail_plugins_block = false;
};

DoveconfOutput parse_doveconf(const std::string &out)
{
	DoveconfOutput r;
	std::string block;
	size_t pos = 0;
	while (pos < out.size()) {
		size_t end = out.find('\n', pos);
		if (end == std::string::npos)
			end = out.size();
		std::string line = out.substr(pos, end - pos);
		pos = end + 1;
		size_t first = line.find_first_not_of(' ');
		if (first == std::string::npos)
			continue;
		line.erase(0, first);
		if (line.size() > 2 && line.compare(line.size() - 2, 2, " {") == 0) {
			block = line.substr(0, line.size() - 2);
			if (block == "mail_plugins")
				r.mail_plugins_block = true;
			continue;
		}
		if (line == "}") {
			block.clear();
			continue;
		}
		size_t eq = line.find(" =");
		if (eq == std::string::npos)
			continue;
		std::string key = line.substr(0, eq);
		std::string value = line.substr(eq + 2);
		if (!value.empty() && value[0] == ' ')
			value.erase(0, 1);
		if (block == "plugin")
			r.plugin[key] = value;
		else if (block == "mail_plugins") {
			if (value == "yes")
				r.mail_plugins.push_back(key);
		} else if (block.empty())
			r.top[key] = value;
	}
	return r;
}

} // namespace

bool user_protocol_settings_get(struct mail_user *user, const char *protocol,
				Settings &settings_r, bool &loaded_r,
				bool &tool_failed_r, std::string &error_r,
				Settings *config_r)
{
	tool_failed_r = false;
	const bool plugin_block = doveconf_plugin_block();
	std::vector<std::string> args = { "-f", std::string("protocol=") +
					  protocol, "mail_plugins" };
	if (plugin_block)
		args.push_back("plugin");
	else
		for (const char *const *name = setting_names; *name != nullptr;
		     name++)
			args.push_back(*name);
	// The same for every user: once per protocol and doveadm run (-A).
	static std::map<std::string, std::string> outputs;
	auto cached = outputs.find(protocol);
	if (cached == outputs.end()) {
		std::string out;
		if (!doveconf_run(args, out, error_r)) {
			tool_failed_r = true;
			return false;
		}
		cached = outputs.emplace(protocol, out).first;
	}
	DoveconfOutput conf = parse_doveconf(cached->second);
	std::map<std::string, std::string> &values =
		plugin_block ? conf.plugin : conf.top;
	std::string mail_plugins = conf.top["mail_plugins"];
	// values as they are when called: the configuration's, then with
	// the userdb fields over them.
	const Getenv lookup = [&values](const char *name) -> const char * {
		auto it = values.find(name);
		return it == values.end() ? nullptr : it->second.c_str();
	};
	if (config_r != nullptr) {
		std::string ignored;
		if (!settings_parse(lookup, *config_r, ignored))
			*config_r = Settings();
	}
	// The userdb fields win, as a session's lookup applies them.
	for (const char *const *field = user->userdb_fields;
	     field != nullptr && *field != nullptr; field++) {
		std::string f = *field;
		size_t eq = f.find('=');
		std::string key = f.substr(0, eq);
		std::string value = eq == std::string::npos ? "" : f.substr(eq + 1);
		if (key.compare(0, 7, "plugin/") == 0)
			key.erase(0, 7);
		if (key.compare(0, 11, "rawlog_ext_") == 0)
			values[key] = value;
		else if (key == "mail_plugins" && !conf.mail_plugins_block) {
			size_t var = value.find("$mail_plugins");
			if (var != std::string::npos)
				value.replace(var, 13, mail_plugins);
			mail_plugins = value;
		}
	}
	loaded_r = false;
	if (conf.mail_plugins_block) {
		for (const std::string &name : conf.mail_plugins)
			loaded_r = loaded_r || name == "rawlog_ext";
	} else {
		for (const char *const *p = t_strsplit_spaces(mail_plugins.c_str(),
							      " ,");
		     *p != nullptr; p++) {
			if (strcmp(*p, "rawlog_ext") == 0 ||
			    strcmp(*p, "lib90_rawlog_ext_plugin") == 0)
				loaded_r = true;
		}
	}
	if (!settings_parse(lookup, settings_r, error_r))
		return false;
	if (settings_r.dir.empty())
		return true;
	const std::string tmpl = settings_r.dir;
	return expand_user_dir(user, protocol, tmpl, settings_r.dir, error_r);
}

} // namespace rawlog_ext
