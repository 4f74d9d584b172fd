// rawlog_ext_login's configuration from the environment, and selection.
#include "test-common.hh"

#include "core/login-config.hh"

#include <map>
#include <sys/mount.h>

using namespace rawlog_ext;

namespace {

using Env = std::map<std::string, std::string>;

bool parse(const Env &env, LoginConfig &config, std::string &error)
{
	return login_config_parse([&](const char *name) -> const char * {
		auto it = env.find(name);
		return it == env.end() ? nullptr : it->second.c_str();
	}, config, error);
}

void test_env_names(void **)
{
	assert_string_equal(login_env_name("rawlog_ext_dir").c_str(),
			    "RAWLOG_EXT_LOGIN_DIR");
	assert_string_equal(login_env_name("rawlog_ext_max_size").c_str(),
			    "RAWLOG_EXT_LOGIN_MAX_SIZE");
}

void test_defaults_and_values(void **)
{
	LoginConfig config;
	std::string error;
	assert_true(parse({}, config, error));
	assert_string_equal(config.settings.dir.c_str(), "");
	assert_true(config.select == LoginSelect::passdb);
	assert_true(config.users.empty());
	assert_true(config.settings.redact);

	assert_true(parse({ { "RAWLOG_EXT_LOGIN_DIR", "/var/log/x" },
			    { "RAWLOG_EXT_LOGIN_FORMAT", "transcript" },
			    { "RAWLOG_EXT_LOGIN_TIMESTAMPS", "chunks" },
			    { "RAWLOG_EXT_LOGIN_SELECT", "all" },
			    { "RAWLOG_EXT_LOGIN_USERS", "alice,,bob@example.com," },
			    { "RAWLOG_EXT_LOGIN_HOLD", "64k" } }, config, error));
	assert_string_equal(config.settings.dir.c_str(), "/var/log/x");
	assert_true(config.settings.format == Format::transcript);
	assert_true(config.settings.timestamps == Timestamps::chunks);
	assert_true(config.select == LoginSelect::all);
	assert_int_equal(config.users.size(), 2);
	assert_string_equal(config.users[1].c_str(), "bob@example.com");
	assert_int_equal(config.hold_max, 64 * 1024);
}

void test_errors_name_the_variable(void **)
{
	LoginConfig config;
	std::string error;
	assert_false(parse({ { "RAWLOG_EXT_LOGIN_MAX_SIZE", "lots" } }, config, error));
	assert_string_equal(error.c_str(), "Invalid setting RAWLOG_EXT_LOGIN_MAX_SIZE=lots: "
			    "expected a size such as 0, 512k, 100M or 2G");
	assert_false(parse({ { "RAWLOG_EXT_LOGIN_TIMESTAMPS", "chunk" } }, config, error));
	assert_string_equal(error.c_str(), "Invalid setting RAWLOG_EXT_LOGIN_TIMESTAMPS=chunk: "
			    "expected yes, no or chunks");
	assert_false(parse({ { "RAWLOG_EXT_LOGIN_SELECT", "some" } }, config, error));
	assert_true(error.find("RAWLOG_EXT_LOGIN_SELECT=some") != std::string::npos);
	assert_false(parse({ { "RAWLOG_EXT_LOGIN_HOLD", "x" } }, config, error));
	assert_true(error.find("RAWLOG_EXT_LOGIN_HOLD=x") != std::string::npos);
	// Named too, its value never repeated (it may be a pasted secret key).
	assert_false(parse({ { "RAWLOG_EXT_LOGIN_SEAL_RECIPIENTS", "age1nope,x" } },
			   config, error));
	assert_true(error.find("Invalid setting RAWLOG_EXT_LOGIN_SEAL_RECIPIENTS: ") == 0);
	assert_true(error.find("age1nope") == std::string::npos);
}

void test_control_settings(void **)
{
	LoginConfig config;
	std::string error;
	assert_true(parse({}, config, error));
	assert_string_equal(config.control_socket.c_str(), "");
	assert_string_equal(config.control_name.c_str(), "rawlog-control");
	assert_true(parse({ { "RAWLOG_EXT_LOGIN_CONTROL_SOCKET", "ctl" },
			    { "RAWLOG_EXT_LOGIN_CONTROL_NAME", "other" } },
			  config, error));
	assert_string_equal(config.control_socket.c_str(), "ctl");
	assert_string_equal(config.control_name.c_str(), "other");
	// ':' would split 2.3's proxy: URI elsewhere; tabs and line breaks
	// are the dict protocol's separators.
	assert_false(parse({ { "RAWLOG_EXT_LOGIN_CONTROL_NAME", "a:b" } },
			   config, error));
	assert_true(error.find("RAWLOG_EXT_LOGIN_CONTROL_NAME=a:b") == 16);
	assert_false(parse({ { "RAWLOG_EXT_LOGIN_CONTROL_SOCKET", "a\tb" } },
			   config, error));
	assert_true(error.find("RAWLOG_EXT_LOGIN_CONTROL_SOCKET=") == 16);
	assert_false(parse({ { "RAWLOG_EXT_LOGIN_CONTROL_SOCKET", "%{home}" } },
			   config, error));
}

void test_deselected(void **)
{
	assert_false(login_user_deselected({}));
	assert_false(login_user_deselected({ "rawlog_ext=yes", "rawlog_ext=no" }));
	assert_true(login_user_deselected({ "proxy", "rawlog_ext=no" }));
	// Not a boolean: not a "no" either (login_user_selected() agrees).
	assert_false(login_user_deselected({ "rawlog_ext=maybe" }));
	LoginConfig config;
	assert_false(login_user_selected(config, "u", "127.0.0.1",
					 { "rawlog_ext=maybe" }));
}

void test_selection(void **)
{
	LoginConfig config;
	config.users = { "listed" };
	const std::string ip = "198.51.100.7";
	assert_false(login_user_selected(config, "alice", ip, {}));
	assert_true(login_user_selected(config, "alice", ip, { "proxy", "rawlog_ext=yes" }));
	assert_true(login_user_selected(config, "listed", ip, {}));
	assert_false(login_user_selected(config, "listed", ip, { "rawlog_ext=no" }));
	// A field that only starts like ours is not ours.
	assert_false(login_user_selected(config, "alice", ip, { "rawlog_ext_dir=yes" }));
	Network network;
	assert_true(parse_network("198.51.100.0/28", network));
	config.networks.push_back(network);
	assert_true(login_user_selected(config, "alice", ip, {}));
	assert_true(login_user_selected(config, "alice", "::ffff:198.51.100.1", {}));
	assert_false(login_user_selected(config, "alice", "198.51.100.16", {}));
	assert_false(login_user_selected(config, "alice", ip, { "rawlog_ext=no" }));
	config.networks.clear();
	config.select = LoginSelect::all;
	assert_true(login_user_selected(config, "alice", ip, {}));
	assert_false(login_user_selected(config, "alice", ip, { "rawlog_ext=n" }));
}

void test_networks(void **)
{
	Network n;
	assert_true(parse_network("192.0.2.1", n));
	assert_int_equal(n.bits, 32);
	assert_true(network_contains(n, "192.0.2.1"));
	assert_false(network_contains(n, "192.0.2.2"));
	assert_true(parse_network("2001:db8::/33", n));
	assert_true(network_contains(n, "2001:db8:7fff::1"));
	assert_false(network_contains(n, "2001:db8:8000::1"));
	assert_false(network_contains(n, "192.0.2.1"));
	assert_true(parse_network("0.0.0.0/0", n));
	assert_true(network_contains(n, "203.0.113.9"));
	for (const char *bad : { "", "192.0.2.0/33", "::/129", "host", "1.2.3.4/", "1.2.3.4/x" })
		assert_false(parse_network(bad, n));

	LoginConfig config;
	std::string error;
	assert_true(parse({ { "RAWLOG_EXT_LOGIN_NETWORKS", "192.0.2.0/24,,2001:db8::/32" } },
			  config, error));
	assert_int_equal(config.networks.size(), 2);
	assert_false(parse({ { "RAWLOG_EXT_LOGIN_NETWORKS", "192.0.2.0/24,nope" } },
			   config, error));
	assert_true(error.find("\"nope\"") != std::string::npos);
}

void test_user_dir_is_one_safe_component(void **)
{
	assert_string_equal(login_user_dir("alice@example.com").c_str(),
			    "alice@example.com");
	assert_string_equal(login_user_dir("a-b.c").c_str(), "a-b.c");
	assert_string_equal(login_user_dir("a/b.c").c_str(), "a%2Fb.c");
	assert_string_equal(login_user_dir("../../etc").c_str(), "..%2F..%2Fetc");
	assert_string_equal(login_user_dir("..").c_str(), "%2E%2E");
	assert_string_equal(login_user_dir(".").c_str(), "%2E");
	// Not the base directory, where sessions that never logged in go.
	assert_string_equal(login_user_dir("").c_str(), "");
	assert_string_equal(login_user_dir("%").c_str(), "%25");
	assert_string_equal(login_user_dir("100%").c_str(), "100%25");
	assert_string_equal(login_user_dir(std::string("a\0b", 3)).c_str(), "a%00b");
	assert_true(login_user_dir("a b\n").find_first_of(" /\n") == std::string::npos);
}

int within(const std::string &path, const std::string &root)
{
	struct stat st;
	if (stat(root.c_str(), &st) < 0)
		fail_msg("stat(%s) failed: %s", root.c_str(), strerror(errno));
	int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		fail_msg("open(%s) failed: %s", path.c_str(), strerror(errno));
	int ret = dir_within(fd, st);
	close(fd);
	return ret;
}

void make_dir(const std::string &path)
{
	if (mkdir(path.c_str(), 0700) < 0)
		fail_msg("mkdir(%s) failed: %s", path.c_str(), strerror(errno));
}

void test_dir_within_follows_what_the_path_leads_to(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	std::string root = tmp.path("root"), out = tmp.path("outside");
	make_dir(root);
	make_dir(root + "/sub");
	make_dir(root + "/sub/deeper");
	make_dir(out);
	make_dir(out + "/sub");
	if (symlink(out.c_str(), (root + "/lnk").c_str()) < 0 ||
	    symlink((root + "/sub").c_str(), (out + "/back").c_str()) < 0 ||
	    symlink(root.c_str(), tmp.path("rootlink").c_str()) < 0)
		fail_msg("symlink failed: %s", strerror(errno));

	assert_int_equal(within(root + "/sub", root), 1);
	assert_int_equal(within(root + "/sub/deeper/", root), 1);
	assert_int_equal(within(root + "/sub/../sub//deeper", root), 1);
	// The chroot itself is no way out of it.
	assert_int_equal(within(root, root), 1);
	assert_int_equal(within(root + "/", root), 1);
	// Below a symlink that leads out: outside, at any component.
	assert_int_equal(within(root + "/lnk", root), 0);
	assert_int_equal(within(root + "/lnk/sub", root), 0);
	assert_int_equal(within(root + "/lnk/sub/", root), 0);
	assert_int_equal(within(root + "/sub/../lnk/sub", root), 0);
	assert_int_equal(within(root + "/sub/../../outside", root), 0);
	assert_int_equal(within(out, root), 0);
	assert_int_equal(within("/", root), 0);
	// A path outside that leads in, and a symlinked chroot path.
	assert_int_equal(within(out + "/back", root), 1);
	assert_int_equal(within(root + "/sub", tmp.path("rootlink")), 1);
	assert_int_equal(within(tmp.path("rootlink") + "/lnk/sub",
				tmp.path("rootlink")), 0);
}

void test_dir_within_bind_mount_below_root(void **state)
{
	// A bind mount below the chroot is the documented way in: ".." from
	// the mount's root leads to its mount point, inside.
	const TmpDir &tmp = tmpdir(state);
	std::string root = tmp.path("root"), out = tmp.path("storage");
	make_dir(root);
	make_dir(root + "/logs");
	make_dir(out);
	make_dir(out + "/sub");
	if (mount(out.c_str(), (root + "/logs").c_str(), "none", MS_BIND,
		  nullptr) < 0) {
		print_message("bind mount not possible here (%s): skipped\n",
			      strerror(errno));
		skip();
	}
	int in_mount = within(root + "/logs/sub", root);
	int source = within(out + "/sub", root);
	(void)umount2((root + "/logs").c_str(), MNT_DETACH);
	assert_int_equal(in_mount, 1);
	assert_int_equal(source, 0);
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_names),
		cmocka_unit_test(test_defaults_and_values),
		cmocka_unit_test(test_errors_name_the_variable),
		cmocka_unit_test(test_control_settings),
		cmocka_unit_test(test_deselected),
		cmocka_unit_test(test_selection),
		cmocka_unit_test(test_networks),
		cmocka_unit_test(test_user_dir_is_one_safe_component),
		cmocka_unit_test_setup_teardown(test_dir_within_follows_what_the_path_leads_to, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_dir_within_bind_mount_below_root, tmpdir_setup, tmpdir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
