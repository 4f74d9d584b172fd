#include "login-config.hh"

#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace rawlog_ext {

bool parse_network(const std::string &text, Network &network_r)
{
	std::string addr = text;
	int bits = -1;
	size_t slash = text.find('/');
	if (slash != std::string::npos) {
		addr = text.substr(0, slash);
		std::string len = text.substr(slash + 1);
		if (len.empty() || len.size() > 3 ||
		    len.find_first_not_of("0123456789") != std::string::npos)
			return false;
		bits = std::stoi(len);
	}
	Network network;
	memset(network.addr, 0, sizeof(network.addr));
	if (inet_pton(AF_INET, addr.c_str(), network.addr) == 1) {
		network.family = AF_INET;
		if (bits > 32)
			return false;
		network.bits = bits < 0 ? 32 : (unsigned int)bits;
	} else if (inet_pton(AF_INET6, addr.c_str(), network.addr) == 1) {
		network.family = AF_INET6;
		if (bits > 128)
			return false;
		network.bits = bits < 0 ? 128 : (unsigned int)bits;
	} else {
		return false;
	}
	network_r = network;
	return true;
}

bool network_contains(const Network &network, const std::string &ip)
{
	unsigned char addr[16];
	int family;
	if (inet_pton(AF_INET, ip.c_str(), addr) == 1) {
		family = AF_INET;
	} else if (inet_pton(AF_INET6, ip.c_str(), addr) == 1) {
		family = AF_INET6;
		// ::ffff:192.0.2.1 is an IPv4 client.
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (network.family == AF_INET &&
		    memcmp(addr, mapped, sizeof(mapped)) == 0) {
			memmove(addr, addr + 12, 4);
			family = AF_INET;
		}
	} else {
		return false;
	}
	if (family != network.family)
		return false;
	unsigned int full = network.bits / 8, rest = network.bits % 8;
	if (memcmp(addr, network.addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (addr[full] & mask) == (network.addr[full] & mask);
}

std::string login_env_name(const std::string &setting)
{
	const std::string prefix = "rawlog_ext_";
	std::string rest = setting.compare(0, prefix.size(), prefix) == 0 ?
		setting.substr(prefix.size()) : setting;
	std::string name = "RAWLOG_EXT_LOGIN_";
	for (char c : rest)
		name += (char)toupper((unsigned char)c);
	return name;
}

bool login_config_parse(const Getenv &getenv, LoginConfig &config,
			std::string &error_r)
{
	config = LoginConfig();
	if (!settings_parse([&](const char *name) {
			return getenv(login_env_name(name).c_str());
		}, config.settings, error_r)) {
		// Name the variable the admin set, not the plugin setting.
		size_t start = error_r.find("rawlog_ext_");
		size_t end = error_r.find_first_of("=:", start);
		if (start != std::string::npos && end != std::string::npos) {
			error_r.replace(start, end - start, login_env_name(
				error_r.substr(start, end - start)));
		}
		return false;
	}

	const char *select = getenv("RAWLOG_EXT_LOGIN_SELECT");
	if (select != nullptr && select[0] != '\0') {
		std::string value = select;
		if (value == "all") {
			config.select = LoginSelect::all;
		} else if (value == "passdb") {
			config.select = LoginSelect::passdb;
		} else {
			error_r = "Invalid setting RAWLOG_EXT_LOGIN_SELECT=" +
				value + ": expected all or passdb";
			return false;
		}
	}

	const char *users = getenv("RAWLOG_EXT_LOGIN_USERS");
	if (users != nullptr) {
		// import_environment values cannot hold spaces: commas.
		std::string list = users, user;
		for (size_t i = 0; i <= list.size(); i++) {
			if (i == list.size() || list[i] == ',') {
				if (!user.empty())
					config.users.push_back(user);
				user.clear();
			} else {
				user += list[i];
			}
		}
	}

	const char *networks = getenv("RAWLOG_EXT_LOGIN_NETWORKS");
	if (networks != nullptr) {
		std::string list = networks, item;
		for (size_t i = 0; i <= list.size(); i++) {
			if (i < list.size() && list[i] != ',') {
				item += list[i];
				continue;
			}
			if (item.empty())
				continue;
			Network network;
			if (!parse_network(item, network)) {
				error_r = "Invalid setting "
					"RAWLOG_EXT_LOGIN_NETWORKS=" + list +
					": \"" + item + "\" is not an address "
					"or a network such as 192.0.2.0/24";
				return false;
			}
			config.networks.push_back(network);
			item.clear();
		}
	}

	const char *hold = getenv("RAWLOG_EXT_LOGIN_HOLD");
	if (hold != nullptr && hold[0] != '\0' &&
	    !parse_size(hold, config.hold_max)) {
		error_r = std::string("Invalid setting RAWLOG_EXT_LOGIN_HOLD=") +
			hold + ": expected a size such as 64k";
		return false;
	}

	const char *socket = getenv("RAWLOG_EXT_LOGIN_CONTROL_SOCKET");
	if (socket != nullptr)
		config.control_socket = socket;
	const char *name = getenv("RAWLOG_EXT_LOGIN_CONTROL_NAME");
	if (name != nullptr && name[0] != '\0')
		config.control_name = name;
	// The dict proxy's protocol separates fields with tabs and ends
	// lines with LF; the 2.3 URI separates its parts with ':'; 2.4
	// expands %variables in the settings they become.
	const char *reserved = "\t\n\r:%";
	if (config.control_name.find_first_of(reserved) != std::string::npos) {
		error_r = "Invalid setting RAWLOG_EXT_LOGIN_CONTROL_NAME=" +
			config.control_name + ": a dict name here has no ':', "
			"'%', tab or line break";
		return false;
	}
	if (config.control_socket.find_first_of(reserved) != std::string::npos) {
		error_r = "Invalid setting RAWLOG_EXT_LOGIN_CONTROL_SOCKET=" +
			config.control_socket + ": a socket path here has no "
			"':', '%', tab or line break";
		return false;
	}
	return true;
}

namespace {

// Whether passdb_fields decide (the first rawlog_ext=<yes|no> field), and
// how.
bool passdb_choice(const std::vector<std::string> &passdb_fields,
		   bool &selected_r)
{
	for (const std::string &field : passdb_fields) {
		const std::string key = "rawlog_ext=";
		if (field.compare(0, key.size(), key) != 0)
			continue;
		if (parse_bool(field.substr(key.size()), selected_r))
			return true;
	}
	return false;
}

} // namespace

bool login_user_deselected(const std::vector<std::string> &passdb_fields)
{
	bool selected;
	return passdb_choice(passdb_fields, selected) && !selected;
}

bool login_user_selected(const LoginConfig &config, const std::string &user,
			 const std::string &client_ip,
			 const std::vector<std::string> &passdb_fields)
{
	bool selected;
	if (passdb_choice(passdb_fields, selected))
		return selected;
	if (config.select == LoginSelect::all)
		return true;
	for (const std::string &listed : config.users) {
		if (listed == user)
			return true;
	}
	for (const Network &network : config.networks) {
		if (network_contains(network, client_ip))
			return true;
	}
	return false;
}

std::string login_user_dir(const std::string &user)
{
	// Injective (two users never share a directory), one component.
	static const char hex[] = "0123456789ABCDEF";
	std::string name;
	for (unsigned char c : user) {
		bool keep = isalnum(c) || strchr("-_.+=@", c) != nullptr;
		if (keep && c != 0) {
			name += (char)c;
		} else {
			name += '%';
			name += hex[c >> 4];
			name += hex[c & 15];
		}
	}
	if (name.empty())
		return "";
	if (name == "." || name == "..")
		return std::string(name.size() == 1 ? "%2E" : "%2E%2E");
	return name;
}

int dir_within(int fd, const struct stat &root)
{
	// By inode, not by path: a path compared as a string says nothing
	// about where its symlinks or mounts lead, and the fd is what a
	// compromised process would fchdir() to.
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	int cur = -1;
	for (;;) {
		if (st.st_dev == root.st_dev && st.st_ino == root.st_ino) {
			if (cur != -1)
				(void)close(cur);
			return 1;
		}
		int parent = openat(cur == -1 ? fd : cur, "..",
				    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int err = errno;
		if (cur != -1)
			(void)close(cur);
		if (parent == -1) {
			errno = err;
			return -1;
		}
		struct stat up;
		if (fstat(parent, &up) < 0) {
			err = errno;
			(void)close(parent);
			errno = err;
			return -1;
		}
		if (up.st_dev == st.st_dev && up.st_ino == st.st_ino) {
			// ".." of the root is itself.
			(void)close(parent);
			return 0;
		}
		cur = parent;
		st = up;
	}
}

} // namespace rawlog_ext
