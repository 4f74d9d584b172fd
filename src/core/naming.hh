// Log file names and directory path checks (no Dovecot, no I/O).
#ifndef RAWLOG_EXT_NAMING_HH
#define RAWLOG_EXT_NAMING_HH

#include <ctime>
#include <functional>
#include <string>
#include <vector>
#include <sys/types.h>

namespace rawlog_ext {

struct NameParts {
	time_t time = 0;	// UTC in the name
	std::string service;	// imap, pop3, ...
	std::string session;	// Dovecot's session id, as in its log lines
	pid_t pid = 0;
	std::string hostname;
	std::string peer;	// a leg's far end ("host:port"), or empty
	std::string ip;		// empty = not in the name
};

// Keeps [A-Za-z0-9.+=-], maps every other byte to '-', so a value can
// never add a separator, a path component or a control character.
std::string sanitize_name_field(const std::string &value);

// "<YYYYMMDD>T<HHMMSS>Z_<service>_<session>_<pid>_<hostname>[_<peer>][_<ip>]",
// plus "_<n>" when n > 0 (a collision with an existing file).
std::string log_base_name(const NameParts &parts, unsigned int n = 0);

// An expanded rawlog_ext_dir must be absolute and free of "." and ".."
// components, so no variable value can lead outside the configured tree.
bool check_dir_path(const std::string &path, std::string &error_r);

// The variables of a Dovecot 2.3 template ("%u", "%Lu", "%1.2n",
// "%{userdb:sub}", ...), each as var_expand() delimits it, in order;
// "%%" is not one.
std::vector<std::string> template_variables(const std::string &tmpl);

// Dovecot 2.4's reading of a template: "%{...}" is an expression (each
// returned whole, in order), "%%{" the text "%{", any other '%' itself.
std::vector<std::string> template_expressions_24(const std::string &tmpl);
// The 2.3 variables a 2.4 template still has ("%u", "%Ln", "%1.2d"; not
// "%%u", 2.3's text "%u"), which 2.4 would keep as text; keys: the
// one-letter keys to look for. A letter followed by a letter or digit
// ("100%sure") is taken as the text it is.
std::vector<std::string> legacy_variables_24(const std::string &tmpl,
					     const std::string &keys);

// One variable's value (false: it cannot be expanded; error_r says why).
using ExpandVariable = std::function<bool(const std::string &variable,
					  std::string &value_r,
					  std::string &error_r)>;

// A directory whose variable expands to nothing would be another
// directory: "/rawlog/%{userdb:sub}" the shared "/rawlog" itself,
// "/rawlog/%{userdb:sub}/x" the "/rawlog//x" of someone else. False, with
// error_r naming setting and the variable, if any variable of tmpl
// expands to an empty string or to slashes only. An identity variable (see
// identity_variable()) must not contain a '/' either: user "alice/x" would
// log inside alice's directory.
bool identity_variable(const std::string &variable);
// The same for variables as found in tmpl by whatever grammar applies.
bool check_variables(const std::string &setting, const std::string &tmpl,
		     const std::vector<std::string> &variables,
		     const ExpandVariable &expand, std::string &error_r);
bool check_template_variables(const std::string &setting,
			      const std::string &tmpl,
			      const ExpandVariable &expand,
			      std::string &error_r);

} // namespace rawlog_ext

#endif
