#include "naming.hh"

#include <cstring>

namespace rawlog_ext {

std::string sanitize_name_field(const std::string &value)
{
	std::string result;
	result.reserve(value.size());
	for (unsigned char c : value) {
		bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '.' || c == '+' ||
			c == '=' || c == '-';
		result += keep ? (char)c : '-';
	}
	// "." and ".." alone would be path components of their own.
	if (result.empty() || result == "." || result == "..")
		result = "-";
	return result;
}

std::string log_base_name(const NameParts &parts, unsigned int n)
{
	struct tm tm;
	char stamp[32];
	if (gmtime_r(&parts.time, &tm) == nullptr ||
	    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
		stamp[0] = '\0';

	std::string name = stamp;
	name += '_';
	name += sanitize_name_field(parts.service);
	name += '_';
	name += sanitize_name_field(parts.session);
	name += '_';
	name += std::to_string((long)parts.pid);
	name += '_';
	name += sanitize_name_field(parts.hostname);
	if (!parts.peer.empty()) {
		name += '_';
		name += sanitize_name_field(parts.peer);
	}
	if (!parts.ip.empty()) {
		name += '_';
		name += sanitize_name_field(parts.ip);
	}
	if (n > 0) {
		name += '_';
		name += std::to_string(n);
	}
	return name;
}

bool check_dir_path(const std::string &path, std::string &error_r)
{
	if (path.empty() || path[0] != '/') {
		error_r = "rawlog_ext_dir=" + path + " is not an absolute path";
		return false;
	}
	size_t start = 0;
	while (start <= path.size()) {
		size_t end = path.find('/', start);
		if (end == std::string::npos)
			end = path.size();
		std::string component = path.substr(start, end - start);
		if (component == "." || component == "..") {
			error_r = "rawlog_ext_dir=" + path +
				" contains a '" + component +
				"' component (a variable value such as the "
				"username may be trying to leave the log directory)";
			return false;
		}
		start = end + 1;
	}
	return true;
}

std::vector<std::string> template_variables(const std::string &tmpl)
{
	// As var_expand_with_funcs() reads it (lib/var-expand.c, 2.3):
	// %[-][0][digits][.[0][-][digits]][modifiers]<key> or %...{name}.
	static const char modifiers[] = "LUEXRHNMDT";
	const size_t max_modifiers = 10;
	std::vector<std::string> variables;
	const size_t n = tmpl.size();
	size_t i = 0;
	while (i < n) {
		if (tmpl[i] != '%') {
			i++;
			continue;
		}
		size_t j = i + 1;
		auto skip_digits = [&] {
			while (j < n && tmpl[j] >= '0' && tmpl[j] <= '9')
				j++;
		};
		if (j < n && tmpl[j] == '-')
			j++;
		if (j < n && tmpl[j] == '0')
			j++;
		skip_digits();
		if (j < n && tmpl[j] == '.') {
			j++;
			if (j < n && tmpl[j] == '0')
				j++;
			if (j < n && tmpl[j] == '-')
				j++;
			skip_digits();
		}
		for (size_t m = 0; m < max_modifiers && j < n &&
		     tmpl[j] != '\0' && strchr(modifiers, tmpl[j]) != nullptr; m++)
			j++;
		if (j >= n)
			break;
		size_t end = j;	// the key's last byte
		if (tmpl[j] == '{' && tmpl.find('}', j) != std::string::npos) {
			unsigned int depth = 1;
			bool escape = false;
			while (++end < n && depth > 0) {
				if (escape) {
					escape = false;
				} else if (tmpl[end] == '\\') {
					escape = true;
				} else if (tmpl[end] == '{') {
					depth++;
				} else if (tmpl[end] == '}') {
					depth--;
				}
			}
			// Unclosed: the rest of the template.
			end = depth == 0 ? end - 1 : n - 1;
		} else if (tmpl[j] == '%') {
			i = j + 1;
			continue;
		}
		variables.push_back(tmpl.substr(i, end + 1 - i));
		i = end + 1;
	}
	return variables;
}

// True for a variable that names whose session it is: 2.3's %u %n %d
// (with any modifiers), %{user}, %{username}, %{domain} and their auth_ and
// original_ forms, %{userdb:...}; 2.4's filters after the name count too
// ("%{user | username}"). Not %{home}: that is a path by design.
bool identity_variable(const std::string &variable)
{
	if (variable.size() < 2 || variable[0] != '%')
		return false;
	if (variable.find('{') == std::string::npos)
		return strchr("und", variable.back()) != nullptr;
	size_t start = variable.find('{') + 1;
	while (start < variable.size() && variable[start] == ' ')
		start++;
	size_t end = variable.find_first_of(" |:}", start);
	std::string name = variable.substr(start, end == std::string::npos ?
					   std::string::npos : end - start);
	if (end != std::string::npos && variable[end] == ':')
		return name == "userdb";
	static const char *const names[] = {
		"user", "username", "domain",
		"auth_user", "auth_username", "auth_domain",
		"original_user", "original_username", "original_domain",
		"orig_user", "orig_username", "orig_domain",
		"master_user",
	};
	for (const char *n : names) {
		if (name == n)
			return true;
	}
	return false;
}

// As 2.4.1's var-expand-lexer.l reads the text outside expressions (the
// longest match first): "%{" opens an expression, "%%{" is the text "%{",
// any other '%' is itself.
std::vector<std::string> template_expressions_24(const std::string &tmpl)
{
	std::vector<std::string> expressions;
	const size_t n = tmpl.size();
	size_t i = 0;
	while (i < n) {
		if (tmpl[i] != '%' || i + 1 >= n) {
			i++;
			continue;
		}
		if (tmpl[i + 1] != '{') {
			i += tmpl.compare(i, 3, "%%{") == 0 ? 3 : 1;
			continue;
		}
		size_t end = i + 2;
		unsigned int depth = 1;
		char quote = '\0';
		for (; end < n && depth > 0; end++) {
			char c = tmpl[end];
			if (quote != '\0') {
				if (c == '\\')
					end++;
				else if (c == quote)
					quote = '\0';
			} else if (c == '\'' || c == '"') {
				quote = c;
			} else if (c == '{') {
				depth++;
			} else if (c == '}') {
				depth--;
			}
		}
		expressions.push_back(tmpl.substr(i, end - i));
		i = end;
	}
	return expressions;
}

std::vector<std::string> legacy_variables_24(const std::string &tmpl,
					     const std::string &keys)
{
	std::vector<std::string> legacy;
	const size_t n = tmpl.size();
	size_t i = 0;
	while (i < n) {
		if (tmpl[i] != '%') {
			i++;
			continue;
		}
		// 2.3 read a run of '%' as pairs ("%%" the text '%'): only
		// an odd one's last '%' starts a variable.
		size_t j = i;
		while (j < n && tmpl[j] == '%')
			j++;
		bool odd = (j - i) % 2 == 1;
		i = j;
		if (!odd || j >= n || tmpl[j] == '{')
			continue;
		std::vector<std::string> variables =
			template_variables(tmpl.substr(j - 1));
		if (variables.empty())
			continue;
		const std::string &variable = variables.front();
		size_t after = j - 1 + variable.size();
		bool word = after < n &&
			((tmpl[after] >= 'a' && tmpl[after] <= 'z') ||
			 (tmpl[after] >= 'A' && tmpl[after] <= 'Z') ||
			 (tmpl[after] >= '0' && tmpl[after] <= '9'));
		if (variable.compare(0, 2, "%{") != 0 &&
		    keys.find(variable.back()) != std::string::npos && !word)
			legacy.push_back(variable);
	}
	return legacy;
}

bool check_template_variables(const std::string &setting,
			      const std::string &tmpl,
			      const ExpandVariable &expand,
			      std::string &error_r)
{
	return check_variables(setting, tmpl, template_variables(tmpl),
			       expand, error_r);
}

bool check_variables(const std::string &setting, const std::string &tmpl,
		     const std::vector<std::string> &variables,
		     const ExpandVariable &expand, std::string &error_r)
{
	for (const std::string &variable : variables) {
		std::string value, error;
		if (!expand(variable, value, error)) {
			error_r = setting + "=" + tmpl + ": " + variable +
				": " + error;
			return false;
		}
		// Slashes alone are no name either: "/rawlog/%{x}" with x="/"
		// is the shared "/rawlog//".
		if (value.find_first_not_of('/') == std::string::npos) {
			error_r = setting + "=" + tmpl + ": " + variable +
				(value.empty() ? " expands to nothing" :
				 " expands to only \"" + value + "\"") +
				" for this session, which would log into "
				"another directory";
			return false;
		}
		if (value.find('/') != std::string::npos &&
		    identity_variable(variable)) {
			error_r = setting + "=" + tmpl + ": " + variable +
				" expands to \"" + value + "\" for this "
				"session, whose '/' would log into another "
				"directory";
			return false;
		}
	}
	return true;
}

} // namespace rawlog_ext
