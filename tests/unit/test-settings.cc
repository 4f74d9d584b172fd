// Settings parsing: every setting, valid and invalid values, defaults.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka 1.1 has no extern "C" of its own.
extern "C" {
#include <cmocka.h>
}

#include "core/settings.hh"

#include <map>
#include <unistd.h>
#include <string>

using namespace rawlog_ext;

namespace {

using Env = std::map<std::string, std::string>;

bool parse(const Env &env, Settings &set, std::string &error)
{
	return settings_parse([&env](const char *name) -> const char * {
		auto it = env.find(name);
		return it == env.end() ? nullptr : it->second.c_str();
	}, set, error);
}

Settings parse_ok(const Env &env)
{
	Settings set;
	std::string error;
	if (!parse(env, set, error))
		fail_msg("settings_parse failed: %s", error.c_str());
	return set;
}

void assert_defaults(const Settings &set)
{
	assert_string_equal(set.dir.c_str(), "");
	assert_false(set.autocreate);
	assert_true(set.timestamps == Timestamps::lines);
	assert_false(set.boundaries);
	assert_true(set.log_in);
	assert_true(set.log_out);
	assert_false(set.ip_in_name);
	assert_true(set.format == Format::split);
	assert_int_equal(set.max_size, 0);
	assert_string_equal(set.lmtp_dir.c_str(), "");
	assert_true(set.lmtp_recipients == LmtpRecipients::automatic);
	assert_true(set.relay);
	assert_true(set.redact);
}

void test_settings_defaults_when_nothing_is_set(void **)
{
	assert_defaults(parse_ok({}));
}

void test_settings_empty_value_means_default(void **)
{
	Env env;
	for (const char *const *name = setting_names; *name != nullptr; name++) {
		assert_defaults(parse_ok({ { *name, "" } }));
		env[*name] = "";
	}
	assert_defaults(parse_ok(env));
}

void test_settings_parse_resets_previous_values(void **)
{
	// The same Settings object is reused when a user's config changes.
	Settings set;
	set.dir = "/old";
	set.autocreate = true;
	set.timestamps = Timestamps::none;
	set.log_in = false;
	set.format = Format::transcript;
	set.max_size = 1;
	std::string error;
	assert_true(parse({}, set, error));
	assert_defaults(set);
}

void test_settings_all_settings_together(void **)
{
	Settings set = parse_ok({
		{ "rawlog_ext_dir", "/var/rawlog/%u" },
		{ "rawlog_ext_autocreate", "yes" },
		{ "rawlog_ext_timestamps", "no" },
		{ "rawlog_ext_boundaries", "yes" },
		{ "rawlog_ext_direction", "out" },
		{ "rawlog_ext_ip_in_name", "yes" },
		{ "rawlog_ext_format", "transcript" },
		{ "rawlog_ext_max_size", "10M" },
	});
	assert_string_equal(set.dir.c_str(), "/var/rawlog/%u");
	assert_true(set.autocreate);
	assert_true(set.timestamps == Timestamps::none);
	assert_true(set.boundaries);
	assert_false(set.log_in);
	assert_true(set.log_out);
	assert_true(set.ip_in_name);
	assert_true(set.format == Format::transcript);
	assert_int_equal(set.max_size, 10 * 1024 * 1024);
}

void test_settings_bool_spellings_for_every_bool_setting(void **)
{
	static const struct {
		const char *name;
		bool Settings::*field;
	} settings[] = {
		{ "rawlog_ext_autocreate", &Settings::autocreate },
		{ "rawlog_ext_boundaries", &Settings::boundaries },
		{ "rawlog_ext_ip_in_name", &Settings::ip_in_name },
	};
	// yes/no/y/n/1/0 in any case; nothing else, no surrounding blanks.
	static const struct {
		const char *value;
		bool valid, result;
	} values[] = {
		{ "yes", true, true }, { "y", true, true }, { "1", true, true },
		{ "no", true, false }, { "n", true, false }, { "0", true, false },
		{ "maybe", false, false }, { "YES", true, true },
		{ "No", true, false }, { "true", false, false },
		{ "false", false, false }, { "on", false, false },
		{ "off", false, false }, { "2", false, false },
		{ " yes", false, false }, { "yes ", false, false },
		{ "yess", false, false },
	};
	for (const auto &s : settings) {
		for (const auto &v : values) {
			// Start from the opposite value so the result is visible.
			Settings set;
			set.*s.field = !v.result;
			std::string error;
			bool ok = parse({ { s.name, v.value } }, set, error);
			if (ok != v.valid)
				fail_msg("%s=\"%s\": parse returned %d, expected %d",
					 s.name, v.value, ok, v.valid);
			if (ok && set.*s.field != v.result)
				fail_msg("%s=\"%s\": got %d", s.name, v.value,
					 set.*s.field);

			bool result = !v.result;
			if (parse_bool(v.value, result) != v.valid ||
			    (v.valid && result != v.result))
				fail_msg("parse_bool(\"%s\") disagrees", v.value);
		}
	}
}

void test_settings_timestamps_values(void **)
{
	static const struct {
		const char *value;
		bool valid;
		Timestamps result;
	} cases[] = {
		{ "chunks", true, Timestamps::chunks },
		{ "yes", true, Timestamps::lines }, { "Y", true, Timestamps::lines },
		{ "1", true, Timestamps::lines },
		{ "no", true, Timestamps::none }, { "N", true, Timestamps::none },
		{ "0", true, Timestamps::none },
		{ "chunk", false, Timestamps::none },
		{ "Chunks", false, Timestamps::none },	// values are lower case
		{ "lines", false, Timestamps::none },
		{ "true", false, Timestamps::none },
	};
	for (const auto &c : cases) {
		for (Timestamps before : { Timestamps::none, Timestamps::lines,
					   Timestamps::chunks }) {
			Settings set;
			set.timestamps = before;
			std::string error;
			bool ok = parse({ { "rawlog_ext_timestamps", c.value } },
					set, error);
			if (ok != c.valid)
				fail_msg("timestamps=%s: parse returned %d", c.value, ok);
			if (!ok) {
				if (error.find("yes, no or chunks") == std::string::npos)
					fail_msg("timestamps=%s: error \"%s\"",
						 c.value, error.c_str());
			} else if (set.timestamps != c.result) {
				fail_msg("timestamps=%s: got %d", c.value,
					 (int)set.timestamps);
			}
		}
	}
}

void test_settings_direction_values(void **)
{
	static const struct {
		const char *value;
		bool valid, log_in, log_out;
	} cases[] = {
		{ "both", true, true, true },
		{ "in", true, true, false },
		{ "out", true, false, true },
		{ "invalid", false, false, false },
		{ "IN", false, false, false },
		{ "in,out", false, false, false },
		{ "none", false, false, false },
	};
	for (const auto &c : cases) {
		Settings set;
		std::string error;
		bool ok = parse({ { "rawlog_ext_direction", c.value } }, set, error);
		if (ok != c.valid)
			fail_msg("direction=%s: parse returned %d", c.value, ok);
		if (ok && (set.log_in != c.log_in || set.log_out != c.log_out))
			fail_msg("direction=%s: in=%d out=%d", c.value,
				 set.log_in, set.log_out);
	}
}

void test_settings_format_values(void **)
{
	static const struct {
		const char *value;
		bool valid;
		Format format;
	} cases[] = {
		{ "split", true, Format::split },
		{ "transcript", true, Format::transcript },
		{ "invalid", false, Format::split },
		{ "Split", false, Format::split },
		{ "transcript ", false, Format::split },
	};
	for (const auto &c : cases) {
		Settings set;
		std::string error;
		bool ok = parse({ { "rawlog_ext_format", c.value } }, set, error);
		if (ok != c.valid)
			fail_msg("format=%s: parse returned %d", c.value, ok);
		if (ok && set.format != c.format)
			fail_msg("format=%s: wrong format", c.value);
	}
}

void test_settings_lmtp_recipients_values(void **)
{
	static const struct {
		const char *value;
		bool valid;
		LmtpRecipients recipients;
	} cases[] = {
		{ "auto", true, LmtpRecipients::automatic },
		{ "yes", true, LmtpRecipients::yes },
		{ "no", true, LmtpRecipients::no },
		{ "Auto", true, LmtpRecipients::automatic },
		{ "YES", true, LmtpRecipients::yes },
		{ "maybe", false, LmtpRecipients::automatic },
	};
	for (const auto &c : cases) {
		Settings set;
		std::string error;
		bool ok = parse({ { "rawlog_ext_lmtp_recipients", c.value } },
				set, error);
		if (ok != c.valid)
			fail_msg("lmtp_recipients=%s: parse returned %d",
				 c.value, ok);
		if (ok && set.lmtp_recipients != c.recipients)
			fail_msg("lmtp_recipients=%s: wrong value", c.value);
	}
}

void test_settings_max_size_values(void **)
{
	constexpr uint64_t K = 1024, M = K * K, G = M * K, T = G * K;
	static const struct {
		const char *value;
		bool valid;
		uint64_t size;
	} cases[] = {
		{ "0", true, 0 },
		{ "512", true, 512 },
		{ "512b", true, 512 },
		{ "512k", true, 512 * K },
		{ "512K", true, 512 * K },
		{ "100M", true, 100 * M },
		{ "2G", true, 2 * G },
		{ "1T", true, T },
		{ "10 M", true, 10 * M },
		{ "10MB", true, 10 * M },
		{ "10MiB", true, 10 * M },
		{ "10kb", true, 10 * K },
		{ "10  gib", true, 10 * G },
		{ "10 ", true, 10 },
		// Largest values that still fit in 64 bits, and one more.
		{ "9999999999999999999", true, 9999999999999999999ULL },
		{ "16777215T", true, 16777215 * T },
		{ "16777216T", false, 0 },
		{ "17179869183G", true, 17179869183 * G },
		{ "17179869184G", false, 0 },
		{ "abc", false, 0 },
		{ "", false, 0 },
		{ "-1", false, 0 },
		{ "+1", false, 0 },
		{ " 1", false, 0 },
		{ "1.5M", false, 0 },
		{ "10 M B", false, 0 },
		{ "10P", false, 0 },
		{ "10Mi", false, 0 },
		{ "M", false, 0 },
		{ "18446744073709551615", true, UINT64_MAX },
		{ "000000000000000000001", true, 1 },
		{ "18446744073709551616", false, 0 },
		{ "99999999999999999999", false, 0 },
		{ "18446744073709551615T", false, 0 },
	};
	for (const auto &c : cases) {
		uint64_t size = 12345;
		bool ok = parse_size(c.value, size);
		if (ok != c.valid)
			fail_msg("parse_size(\"%s\") returned %d", c.value, ok);
		if (ok && size != c.size)
			fail_msg("parse_size(\"%s\") = %llu, expected %llu",
				 c.value, (unsigned long long)size,
				 (unsigned long long)c.size);
		// An empty value is "default" for settings_parse, not an error.
		if (c.value[0] == '\0')
			continue;

		Settings set;
		std::string error;
		ok = parse({ { "rawlog_ext_max_size", c.value } }, set, error);
		if (ok != c.valid)
			fail_msg("rawlog_ext_max_size=%s: parse returned %d",
				 c.value, ok);
		if (ok && set.max_size != c.size)
			fail_msg("rawlog_ext_max_size=%s: wrong size", c.value);
	}
}

void test_settings_error_names_setting_and_value(void **)
{
	// Every listed setting is parsed: dir takes any value, the rest
	// reject this one and say which setting and what value.
	const std::string value = "bogus value";
	for (const char *const *name = setting_names; *name != nullptr; name++) {
		Settings set;
		std::string error;
		bool ok = parse({ { *name, value } }, set, error);
		if (std::string(*name) == "rawlog_ext_dir") {
			assert_true(ok);
			assert_string_equal(set.dir.c_str(), value.c_str());
			continue;
		}
		if (std::string(*name) == "rawlog_ext_lmtp_dir") {
			assert_true(ok);
			assert_string_equal(set.lmtp_dir.c_str(), value.c_str());
			continue;
		}
		if (ok)
			fail_msg("%s=%s was accepted", *name, value.c_str());
		// Recipients are never repeated (a pasted key may be secret).
		bool quiet = std::string(*name) == "rawlog_ext_seal_recipients";
		std::string expected = "Invalid setting " + std::string(*name) +
			(quiet ? "" : "=" + value) + ": expected ";
		if (error.compare(0, expected.size(), expected) != 0)
			fail_msg("%s: unexpected error \"%s\"", *name, error.c_str());
		assert_true(error.size() > expected.size());
	}
}

// Public keys made by age-keygen.
const char r1[] = "age1sw4qyr40lmrjyssk5maffaz43z4x0kjf809xvzjv48a2mqqyd5zqgm5xmw";
const char r2[] = "age1cly9pdz8ecuv80cam24dwuaf4uepkj566xu8k47d8c0wr8a0tc5sn6dzw7";

void test_settings_seal_recipients(void **)
{
	Settings set;
	std::string error;
	assert_true(parse({ { "rawlog_ext_dir", "/r" } }, set, error));
	assert_true(set.seal_recipients.empty());
	// Spaces or commas (import_environment splits at spaces).
	for (const std::string &value : { std::string(r1) + " " + r2,
					  std::string(r1) + "," + r2,
					  std::string(" ") + r1 + ",\t" + r2 + " " }) {
		assert_true(parse({ { "rawlog_ext_seal_recipients", value } },
				  set, error));
		assert_int_equal(set.seal_recipients.size(), 2);
		assert_true(set.seal_recipients[0] != set.seal_recipients[1]);
	}

	char dir[] = "/tmp/rawlog-ext-settings.XXXXXX";
	assert_non_null(mkdtemp(dir));
	std::string file = std::string(dir) + "/recipients";
	FILE *f = fopen(file.c_str(), "w");
	assert_non_null(f);
	fprintf(f, "# admins\n\n%s\n# old key\n%s\n", r1, r2);
	fclose(f);
	assert_true(parse({ { "rawlog_ext_seal_recipients", "file:" + file } },
			  set, error));
	assert_int_equal(set.seal_recipients.size(), 2);

	struct Bad { std::string value; const char *detail; };
	// A secret key made by age-keygen (for this test only).
	const std::string secret = "AGE-SECRET-KEY-17VEKTMNK6PFF735P3CYL54TZWA0X9V7E3WKAFZEEF6LF33JPTEXQZQ8HD2";
	std::string empty = std::string(dir) + "/empty";
	f = fopen(empty.c_str(), "w");
	assert_non_null(f);
	fprintf(f, "# nobody yet\n");
	fclose(f);
	const Bad bad[] = {
		{ std::string(r1) + " age1qqqq", "recipient 2 is not a valid age1... recipient" },
		{ std::string(r1).substr(0, 40), "recipient 1 is not a valid" },
		// One character changed: the checksum fails.
		{ std::string(r1).substr(0, 20) + "q" + (r1 + 21), "recipient 1 is not a valid" },
		{ "file:" + std::string(dir) + "/missing", "cannot read recipients file" },
		{ "file:" + empty, "no recipients in" },
		{ secret, "recipient 1 is a secret key (an identity), not a recipient" },
		{ "ssh-ed25519", "recipient 1 is an SSH key" },
	};
	for (const Bad &b : bad) {
		set.seal_recipients.clear();
		if (parse({ { "rawlog_ext_seal_recipients", b.value } }, set,
			  error))
			fail_msg("%s was accepted", b.value.c_str());
		if (error.find("Invalid setting rawlog_ext_seal_recipients: ") != 0 ||
		    error.find(b.detail) == std::string::npos)
			fail_msg("%s: error \"%s\"", b.value.c_str(), error.c_str());
		// The value is never repeated: it may be a pasted secret key.
		if (b.value.compare(0, 5, "file:") != 0 &&
		    error.find(b.value.substr(b.value.find(' ') + 1)) != std::string::npos)
			fail_msg("error repeats the value: \"%s\"", error.c_str());
	}
	unlink(file.c_str());
	unlink(empty.c_str());
	rmdir(dir);
}

void test_settings_invalid_value_fails_despite_valid_others(void **)
{
	Settings set;
	std::string error;
	assert_false(parse({ { "rawlog_ext_dir", "/var/rawlog" },
			     { "rawlog_ext_format", "split" },
			     { "rawlog_ext_max_size", "1.5M" } }, set, error));
	assert_string_equal(error.c_str(), "Invalid setting rawlog_ext_max_size=1.5M: "
			    "expected a size such as 0, 512k, 100M or 2G");
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings_defaults_when_nothing_is_set),
		cmocka_unit_test(test_settings_empty_value_means_default),
		cmocka_unit_test(test_settings_parse_resets_previous_values),
		cmocka_unit_test(test_settings_all_settings_together),
		cmocka_unit_test(test_settings_bool_spellings_for_every_bool_setting),
		cmocka_unit_test(test_settings_timestamps_values),
		cmocka_unit_test(test_settings_direction_values),
		cmocka_unit_test(test_settings_format_values),
		cmocka_unit_test(test_settings_lmtp_recipients_values),
		cmocka_unit_test(test_settings_max_size_values),
		cmocka_unit_test(test_settings_error_names_setting_and_value),
		cmocka_unit_test(test_settings_seal_recipients),
		cmocka_unit_test(test_settings_invalid_value_fails_despite_valid_others),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
