// The control dict's keys and values, and what they mean for a session
// (doveadm rawlog enable, issue #15).
#include "test-common.hh"

#include "core/control.hh"

#include <string>
#include <vector>

using namespace rawlog_ext;

namespace {

void test_keys_round_trip_and_stay_one_component(void **)
{
	static const char *const users[] = {
		"alice", "alice@example.com", "a/b", "../x", ".", "..",
		"a b\tc", "%41", "x\xff", "\x01",
	};
	for (const char *u : users) {
		for (const std::string &key : { control_enabled_key(u),
						control_used_key(u) }) {
			std::string back;
			assert_true(control_key_user(key, back));
			assert_string_equal(back.c_str(), u);
			// One component after the prefix: no '/', '.' alone.
			std::string name = key.substr(key.rfind('/') + 1);
			assert_true(key.find('/', strlen("shared/rawlog-ext/")) ==
				    key.rfind('/'));
			assert_true(name != "." && name != "..");
		}
	}
	assert_string_equal(control_enabled_key("a/b").c_str(),
			    "shared/rawlog-ext/enabled/a%2Fb");
	std::string u;
	// Only the canonical spelling is a user; an empty one is none.
	assert_false(control_key_user("shared/rawlog-ext/enabled/%61", u));
	assert_false(control_key_user("shared/rawlog-ext/enabled/a%2fb", u));
	assert_false(control_key_user("shared/rawlog-ext/enabled/a%2", u));
	assert_false(control_key_user("shared/rawlog-ext/enabled/", u));
	assert_false(control_key_user("shared/rawlog-ext/other/alice", u));
	assert_false(control_key_user("shared/rawlog-ext/enabled/a/b", u));
}

void test_values(void **)
{
	Enablement e;
	e.expires = 1700003600;
	e.max_bytes = 10485760;
	assert_string_equal(control_value(e).c_str(), "1700003600 10485760");
	Enablement back;
	assert_true(control_value_parse(control_value(e), back));
	assert_int_equal(back.expires, e.expires);
	assert_int_equal(back.max_bytes, e.max_bytes);
	for (const char *bad : { "", "1", "1 ", " 1 2", "1  2", "1 2 3", "-1 2",
				 "1 -2", "x 2", "1 2x", "99999999999999999999999 1",
				 "1 18446744073709551616" })
		assert_false(control_value_parse(bad, back));
}

void test_state(void **)
{
	const time_t now = 1700000000;
	uint64_t left = 99;
	assert_int_equal(control_state(nullptr, nullptr, now, left),
			 ControlState::off);
	const std::string on = "1700003600 0", budget = "1700003600 1000";
	assert_int_equal(control_state(&on, nullptr, now, left), ControlState::on);
	assert_int_equal(left, 0);
	const std::string used = "400", all = "1000", more = "5000", bad = "4x";
	assert_int_equal(control_state(&budget, nullptr, now, left),
			 ControlState::on);
	assert_int_equal(left, 1000);
	assert_int_equal(control_state(&budget, &used, now, left),
			 ControlState::on);
	assert_int_equal(left, 600);
	assert_int_equal(control_state(&budget, &all, now, left),
			 ControlState::budget_used);
	assert_int_equal(control_state(&budget, &more, now, left),
			 ControlState::budget_used);
	// No budget: what was used does not matter.
	assert_int_equal(control_state(&on, &more, now, left), ControlState::on);
	// The end is exclusive.
	assert_int_equal(control_state(&on, nullptr, 1700003600, left),
			 ControlState::expired);
	assert_int_equal(control_state(&on, nullptr, 1700003599, left),
			 ControlState::on);
	const std::string garbage = "soon";
	assert_int_equal(control_state(&garbage, nullptr, now, left),
			 ControlState::invalid);
	assert_int_equal(control_state(&budget, &bad, now, left),
			 ControlState::invalid);
	assert_string_equal(control_state_name(ControlState::budget_used),
			    "byte budget used");
}

void test_index(void **)
{
	// Built up in any order: sorted by name, each once.
	std::string v = control_index_add("", "bob");
	assert_string_equal(v.c_str(), "bob");
	v = control_index_add(v, "alice");
	v = control_index_add(v, "a b");
	v = control_index_add(v, "alice");
	assert_string_equal(v.c_str(), "a%20b alice bob");
	std::vector<std::string> users = control_index_users(v);
	assert_int_equal(users.size(), 3);
	assert_string_equal(users[0].c_str(), "a b");
	assert_string_equal(users[1].c_str(), "alice");
	assert_string_equal(users[2].c_str(), "bob");
	v = control_index_remove(v, "alice");
	assert_string_equal(v.c_str(), "a%20b bob");
	assert_string_equal(control_index_remove(v, "carol").c_str(), v.c_str());
	v = control_index_remove(control_index_remove(v, "bob"), "a b");
	assert_string_equal(v.c_str(), "");
	assert_true(control_index_users("").empty());
	assert_true(control_index_users(" \n\t ").empty());

	// Read with any whitespace, duplicates once; names login_user_dir()
	// would not write skipped, and dropped when the index is rewritten.
	users = control_index_users("carol\nbob  bob\t%61 a/b a%2 x%2Fy dave\r\n");
	assert_int_equal(users.size(), 4);
	assert_string_equal(users[0].c_str(), "carol");
	assert_string_equal(users[1].c_str(), "bob");
	assert_string_equal(users[2].c_str(), "x/y");
	assert_string_equal(users[3].c_str(), "dave");
	assert_string_equal(control_index_add("carol\n%61 bob\n", "x/y").c_str(),
			    "bob carol x%2Fy");
	// Odd bytes in a user name stay one name.
	assert_string_equal(control_index_add("", "a\nb c").c_str(),
			    "a%0Ab%20c");
	users = control_index_users(control_index_add("", "a\nb c"));
	assert_int_equal(users.size(), 1);
	assert_string_equal(users[0].c_str(), "a\nb c");
}

void test_durations(void **)
{
	static const struct {
		const char *in;
		time_t seconds;
	} good[] = {
		{ "3600", 3600 }, { "90s", 90 }, { "90 secs", 90 },
		{ "30m", 1800 }, { "15 mins", 900 }, { "1h", 3600 },
		{ "1 hour", 3600 }, { "2 Hours", 7200 }, { "2d", 172800 },
		{ "1 week", 604800 }, { "1w", 604800 }, { "1 minute", 60 },
	};
	for (const auto &c : good) {
		time_t s = 0;
		assert_true(parse_duration(c.in, s));
		assert_int_equal(s, c.seconds);
	}
	for (const char *bad : { "", "0", "0h", "h", "1 ", " 1", "1  h", "1x",
				 "1.5h", "-1h", "1hh", "4000w", "99999999999999999999",
				 "1h30m" }) {
		time_t s = 0;
		assert_false(parse_duration(bad, s));
	}
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_round_trip_and_stay_one_component),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_state),
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_durations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
