// Log file names and the rawlog_ext_dir path check.
#include "test-common.hh"

#include <cstdlib>
#include <cstring>
#include <string>

using namespace rawlog_ext;

namespace {

void test_sanitize_name_field_table(void **)
{
	static const struct {
		std::string in, out;
	} cases[] = {
		{ "imap", "imap" },
		{ "AZaz09.+=-", "AZaz09.+=-" },
		{ "a/b", "a-b" },
		{ "/", "-" },
		{ "../x", "..-x" },
		{ "a_b", "a-b" },
		// Alone, "." and ".." would be path components.
		{ ".", "-" },
		{ "..", "-" },
		{ "...", "..." },
		{ "", "-" },
		{ "a b", "a-b" },
		{ "%u", "-u" },
		{ "a\tb\nc\rd\x7f", "a-b-c-d-" },
		{ std::string("a\0b", 3), "a-b" },
		{ "\xc3\xbc", "--" },		// UTF-8 u-umlaut: one '-' per byte
		{ "\x80\xff", "--" },
		// Dovecot session ids are base64: '+' stays, '/' does not.
		{ "k2Bp/9+4xcBAAQAB", "k2Bp-9+4xcBAAQAB" },
		{ "abc+/==", "abc+-==" },
	};
	for (const auto &c : cases) {
		std::string got = sanitize_name_field(c.in);
		if (got != c.out)
			fail_msg("sanitize_name_field(\"%s\") = \"%s\", expected \"%s\"",
				 c.in.c_str(), got.c_str(), c.out.c_str());
	}
}

void test_sanitize_name_field_every_byte(void **)
{
	// Exhaustive: each byte is kept or becomes '-', never anything else.
	for (int c = 0; c < 256; c++) {
		bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '.' || c == '+' ||
			c == '=' || c == '-';
		std::string in = "x" + std::string(1, (char)c) + "x";
		std::string expected = "x" + std::string(1, keep ? (char)c : '-') + "x";
		if (sanitize_name_field(in) != expected)
			fail_msg("byte 0x%02x mapped wrongly", c);
	}
}

void test_log_base_name_exact_strings(void **)
{
	NameParts plain = fixed_parts("mail.example.org");
	NameParts with_ip = plain;
	with_ip.ip = "192.0.2.1";
	NameParts with_ipv6 = plain;
	with_ipv6.ip = "2001:db8::1";
	NameParts leg = with_ip;
	leg.service = "submission-relay";
	leg.peer = "relay.example.org:587";
	NameParts epoch = plain;
	epoch.time = 0;
	NameParts leap_day = plain;
	leap_day.time = 951782400;
	NameParts y2038 = plain;
	y2038.time = 2147483647;

	const struct {
		const NameParts *parts;
		unsigned int n;
		const char *expected;
	} cases[] = {
		{ &plain, 0, "20231114T221320Z_imap_sess_1234_mail.example.org" },
		{ &plain, 1, "20231114T221320Z_imap_sess_1234_mail.example.org_1" },
		{ &leg, 2, "20231114T221320Z_submission-relay_sess_1234_"
		  "mail.example.org_relay.example.org-587_192.0.2.1_2" },
		{ &plain, 12, "20231114T221320Z_imap_sess_1234_mail.example.org_12" },
		{ &with_ip, 0, "20231114T221320Z_imap_sess_1234_mail.example.org_192.0.2.1" },
		{ &with_ip, 2, "20231114T221320Z_imap_sess_1234_mail.example.org_192.0.2.1_2" },
		{ &with_ipv6, 0, "20231114T221320Z_imap_sess_1234_mail.example.org_2001-db8--1" },
		{ &epoch, 0, "19700101T000000Z_imap_sess_1234_mail.example.org" },
		{ &leap_day, 0, "20000229T000000Z_imap_sess_1234_mail.example.org" },
		{ &y2038, 0, "20380119T031407Z_imap_sess_1234_mail.example.org" },
	};
	for (const auto &c : cases) {
		std::string got = log_base_name(*c.parts, c.n);
		if (got != c.expected)
			fail_msg("log_base_name = \"%s\", expected \"%s\"",
				 got.c_str(), c.expected);
	}
}

void test_log_base_name_is_utc_whatever_tz(void **)
{
	const char *old_tz = getenv("TZ");
	std::string saved = old_tz == nullptr ? "" : old_tz;
	// A POSIX TZ string: needs no tzdata to take effect.
	setenv("TZ", "JST-9", 1);
	tzset();
	std::string name = log_base_name(fixed_parts("mail.example.org"));
	if (old_tz == nullptr)
		unsetenv("TZ");
	else
		setenv("TZ", saved.c_str(), 1);
	tzset();
	assert_string_equal(name.c_str(),
			    "20231114T221320Z_imap_sess_1234_mail.example.org");
}

void test_log_base_name_hostile_fields_add_no_separator(void **)
{
	NameParts parts = fixed_parts("mail.example.org");
	parts.service = "imap/../x_y";
	parts.session = "../..";
	parts.hostname = "evil/host_name\n";
	parts.ip = "1_2/3";
	assert_string_equal(log_base_name(parts, 3).c_str(),
			    "20231114T221320Z_imap-..-x-y_..-.._1234_evil-host-name-_1-2-3_3");

	// Fields that sanitize to nothing useful still keep their slot.
	parts.service = "";
	parts.session = "..";
	parts.hostname = ".";
	parts.ip = "";
	assert_string_equal(log_base_name(parts).c_str(),
			    "20231114T221320Z_-_-_1234_-");
}

void test_check_dir_path_table(void **)
{
	static const struct {
		const char *path;
		bool valid;
	} cases[] = {
		{ "/", true },
		{ "/var/rawlog", true },
		{ "/a//b", true },
		{ "/a/b/", true },
		{ "/a/b/..x", true },
		{ "/a/..b/c", true },
		{ "/a/.b", true },
		{ "/a/b.../c", true },
		{ "/a/.../c", true },
		{ "", false },
		{ "a/b", false },
		{ "relative", false },
		{ "./a", false },
		{ "../a", false },
		{ "~/x", false },
		{ "/a/../b", false },
		{ "/a/./b", false },
		{ "/a/..", false },
		{ "/a/.", false },
		{ "/..", false },
		{ "/.", false },
		{ "/a/../", false },
		{ "//..//a", false },
	};
	for (const auto &c : cases) {
		std::string error;
		bool ok = check_dir_path(c.path, error);
		if (ok != c.valid)
			fail_msg("check_dir_path(\"%s\") returned %d", c.path, ok);
		if (!ok && error.find(std::string("rawlog_ext_dir=") + c.path + " ") ==
		    std::string::npos)
			fail_msg("error for \"%s\" does not name the path: %s",
				 c.path, error.c_str());
	}
}

void test_check_dir_path_error_messages(void **)
{
	std::string error;
	assert_false(check_dir_path("var/rawlog", error));
	assert_string_equal(error.c_str(),
			    "rawlog_ext_dir=var/rawlog is not an absolute path");
	assert_false(check_dir_path("/a/./b", error));
	assert_non_null(strstr(error.c_str(),
			       "rawlog_ext_dir=/a/./b contains a '.' component"));
	assert_false(check_dir_path("/a/../b", error));
	assert_non_null(strstr(error.c_str(),
			       "rawlog_ext_dir=/a/../b contains a '..' component"));
}

void test_check_dir_path_rejects_hostile_usernames(void **)
{
	// What "/var/rawlog/%u" expands to for usernames a client picks.
	static const struct {
		const char *username;
		bool valid;
	} cases[] = {
		{ "alice", true },
		{ "alice@example.org", true },
		{ "..alice", true },
		{ "a/b", true },
		{ "..", false },
		{ ".", false },
		{ "../x", false },
		{ "a/../../b", false },
		{ "a/./b", false },
		{ "a/..", false },
	};
	for (const auto &c : cases) {
		std::string path = std::string("/var/rawlog/") + c.username;
		std::string error;
		if (check_dir_path(path, error) != c.valid)
			fail_msg("username \"%s\" -> %s: wrong verdict",
				 c.username, path.c_str());
	}
}

} // namespace

void test_template_variables_table(void **)
{
	struct Case {
		const char *tmpl;
		std::vector<std::string> variables;
	};
	const Case cases[] = {
		{ "/var/log/rawlog", {} },
		{ "/rawlog/%u", { "%u" } },
		{ "/rawlog/%%u/%d", { "%d" } },
		{ "%h/rawlog-%s", { "%h", "%s" } },
		{ "/r/%Lu/%1.2n/%-3.1Ud", { "%Lu", "%1.2n", "%-3.1Ud" } },
		{ "/r/%{userdb:sub}/x", { "%{userdb:sub}" } },
		{ "/r/%L{user}%{env:A}", { "%L{user}", "%{env:A}" } },
		// Nested and escaped braces, as var_expand counts them.
		{ "/r/%{a{b}c}d", { "%{a{b}c}" } },
		{ "/r/%{a\\}b}c", { "%{a\\}b}" } },
		// Unclosed: the rest; no '}' at all: '{' is the key.
		{ "/r/%{a{b}", { "%{a{b}" } },
		{ "/r/%{ab", { "%{" } },
		// Ten modifiers at most, then the key.
		{ "%LLLLLLLLLLu", { "%LLLLLLLLLLu" } },
		{ "%LLLLLLLLLLLu", { "%LLLLLLLLLLL" } },
		// A lone '%' at the end is nothing.
		{ "/r/%", {} },
		{ "/r/%0", {} },
	};
	for (const Case &c : cases) {
		std::vector<std::string> got = template_variables(c.tmpl);
		if (got != c.variables)
			fail_msg("template_variables(%s): %zu variables",
				 c.tmpl, got.size());
	}
}

void test_check_template_variables_refuses_empty_values(void **)
{
	auto expand = [](const std::string &variable, std::string &value_r,
			 std::string &error_r) {
		if (variable == "%{bad}") {
			error_r = "unknown variable";
			return false;
		}
		value_r = variable == "%u" ? "alice" :
			variable == "%{slash}" ? "//" : "";
		return true;
	};
	std::string error;
	assert_true(check_template_variables("rawlog_ext_dir", "/r/%u",
					     expand, error));
	assert_true(check_template_variables("rawlog_ext_dir", "/r/%%",
					     expand, error));
	assert_false(check_template_variables("rawlog_ext_dir",
		"/r/%u/%{userdb:sub}", expand, error));
	assert_string_equal(error.c_str(), "rawlog_ext_dir=/r/%u/%{userdb:sub}"
			    ": %{userdb:sub} expands to nothing for this "
			    "session, which would log into another directory");
	assert_false(check_template_variables("rawlog_ext_dir", "/r/x%{y}",
					      expand, error));
	assert_false(check_template_variables("rawlog_ext_dir", "/r/%{slash}",
					      expand, error));
	assert_string_equal(error.c_str(), "rawlog_ext_dir=/r/%{slash}: "
			    "%{slash} expands to only \"//\" for this session, "
			    "which would log into another directory");
	assert_false(check_template_variables("rawlog_ext_lmtp_dir",
					      "/r/%{bad}", expand, error));
	assert_string_equal(error.c_str(), "rawlog_ext_lmtp_dir=/r/%{bad}: "
			    "%{bad}: unknown variable");
}

void test_identity_variable_table(void **)
{
	const char *const identity[] = {
		"%u", "%Lu", "%1.2n", "%d", "%{user}", "%{username}",
		"%{domain}", "%{userdb:sub}", "%{userdb:sub:x}",
		"%{user | username}", "%{user | domain | lower}",
		"%{auth_user}", "%{original_user}", "%{orig_domain}",
	};
	for (const char *v : identity)
		assert_true(identity_variable(v));
	const char *const other[] = {
		"%h", "%s", "%{home}", "%{service}", "%{session}",
		"%{remote_ip}", "%{users}", "%{userdbx}", "%%", "u",
	};
	for (const char *v : other)
		assert_false(identity_variable(v));
}

void test_check_template_variables_refuses_slash_in_identity(void **)
{
	auto expand = [](const std::string &variable, std::string &value_r,
			 std::string &) {
		value_r = variable == "%{home}" ? "/home/alice/x" : "alice/x";
		return true;
	};
	std::string error;
	assert_false(check_template_variables("rawlog_ext_dir",
		"/r/%{user}", expand, error));
	assert_string_equal(error.c_str(), "rawlog_ext_dir=/r/%{user}: "
			    "%{user} expands to \"alice/x\" for this session, "
			    "whose '/' would log into another directory");
	assert_false(check_template_variables("rawlog_ext_dir", "/r/%n",
					      expand, error));
	assert_false(check_template_variables("rawlog_ext_dir",
		"/r/%{userdb:sub}", expand, error));
	assert_false(check_template_variables("rawlog_ext_dir",
		"/r/%{user | username}", expand, error));
	assert_true(check_template_variables("rawlog_ext_dir", "%{home}/r",
					     expand, error));
	assert_true(check_template_variables("rawlog_ext_dir",
		"/r/%{service}", expand, error));
}

void test_template_expressions_24(void **)
{
	using V = std::vector<std::string>;
	assert_true(template_expressions_24("/r/%{user}") == V{"%{user}"});
	assert_true(template_expressions_24("/r/%%{user}") == V{});
	assert_true(template_expressions_24("/r/%%%{user}") == V{});
	assert_true(template_expressions_24("/r/%%x%{user}") == V{"%{user}"});
	assert_true(template_expressions_24("/r/100%sure/%{a | b('}')}/x") ==
		    V{"%{a | b('}')}"});
	assert_true(template_expressions_24("/r/%{a}%{b | c}") ==
		    V({"%{a}", "%{b | c}"}));
}

void test_legacy_variables_24(void **)
{
	using V = std::vector<std::string>;
	const std::string keys = "undhs";
	assert_true(legacy_variables_24("/r/%u", keys) == V{"%u"});
	assert_true(legacy_variables_24("/r/%Ln/%1.2d/x", keys) ==
		    V({"%Ln", "%1.2d"}));
	assert_true(legacy_variables_24("/r/%%u", keys) == V{});
	assert_true(legacy_variables_24("/r/%%%u", keys) == V{"%u"});
	assert_true(legacy_variables_24("/r/%%{u}/%%%{u}", keys) == V{});
	assert_true(legacy_variables_24("/r/100%sure", keys) == V{});
	assert_true(legacy_variables_24("/r/%{user}/%x", keys) == V{});
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize_name_field_table),
		cmocka_unit_test(test_sanitize_name_field_every_byte),
		cmocka_unit_test(test_log_base_name_exact_strings),
		cmocka_unit_test(test_log_base_name_is_utc_whatever_tz),
		cmocka_unit_test(test_log_base_name_hostile_fields_add_no_separator),
		cmocka_unit_test(test_check_dir_path_table),
		cmocka_unit_test(test_check_dir_path_error_messages),
		cmocka_unit_test(test_check_dir_path_rejects_hostile_usernames),
		cmocka_unit_test(test_template_variables_table),
		cmocka_unit_test(test_check_template_variables_refuses_empty_values),
		cmocka_unit_test(test_identity_variable_table),
		cmocka_unit_test(test_template_expressions_24),
		cmocka_unit_test(test_legacy_variables_24),
		cmocka_unit_test(test_check_template_variables_refuses_slash_in_identity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
