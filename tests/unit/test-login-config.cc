// rawlog_ext_login's configuration from the environment, and selection.
#include "test-common.hh"

#include "core/login-config.hh"

#include <map>

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
			    { "RAWLOG_EXT_LOGIN_SELECT", "all" },
			    { "RAWLOG_EXT_LOGIN_USERS", "alice,,bob@example.com," },
			    { "RAWLOG_EXT_LOGIN_HOLD", "64k" } }, config, error));
	assert_string_equal(config.settings.dir.c_str(), "/var/log/x");
	assert_true(config.settings.format == Format::transcript);
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
	assert_false(parse({ { "RAWLOG_EXT_LOGIN_SELECT", "some" } }, config, error));
	assert_true(error.find("RAWLOG_EXT_LOGIN_SELECT=some") != std::string::npos);
	assert_false(parse({ { "RAWLOG_EXT_LOGIN_HOLD", "x" } }, config, error));
	assert_true(error.find("RAWLOG_EXT_LOGIN_HOLD=x") != std::string::npos);
}

void test_selection(void **)
{
	LoginConfig config;
	config.users = { "listed" };
	assert_false(login_user_selected(config, "alice", {}));
	assert_true(login_user_selected(config, "alice", { "proxy", "rawlog_ext=yes" }));
	assert_true(login_user_selected(config, "listed", {}));
	assert_false(login_user_selected(config, "listed", { "rawlog_ext=no" }));
	// A field that only starts like ours is not ours.
	assert_false(login_user_selected(config, "alice", { "rawlog_ext_dir=yes" }));
	config.select = LoginSelect::all;
	assert_true(login_user_selected(config, "alice", {}));
	assert_false(login_user_selected(config, "alice", { "rawlog_ext=n" }));
}

void test_user_dir_is_one_safe_component(void **)
{
	assert_string_equal(login_user_dir("alice@example.com").c_str(),
			    "alice-example.com");
	assert_string_equal(login_user_dir("../../etc").c_str(), "..-..-etc");
	assert_string_equal(login_user_dir("..").c_str(), "-");
	assert_string_equal(login_user_dir(".").c_str(), "-");
	assert_string_equal(login_user_dir("").c_str(), "-");
	assert_true(login_user_dir("a/b").find('/') == std::string::npos);
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_names),
		cmocka_unit_test(test_defaults_and_values),
		cmocka_unit_test(test_errors_name_the_variable),
		cmocka_unit_test(test_selection),
		cmocka_unit_test(test_user_dir_is_one_safe_component),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
