// Dovecot 2.4: the setting_parser_info that Dovecot's config is given
// (settings-info.c) declares exactly the settings core parses, each as a
// plain string, so settings_parse() stays the only validator; only the
// directories are templates (SET_STR), the rest take no %variables.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka 1.1 has no extern "C" of its own.
extern "C" {
#include <cmocka.h>
}

#include "dovecot/compat.hh"
#include "core/settings.hh"

#include <cstring>

DOVECOT_EXTERN_C_BEGIN
#include "settings-info.h"
DOVECOT_EXTERN_C_END

using namespace rawlog_ext;

namespace {

const struct setting_define *find(const char *name)
{
	for (const struct setting_define *def =
		     rawlog_ext_setting_parser_info.defines;
	     def->key != nullptr; def++) {
		if (strcmp(def->key, name) == 0)
			return def;
	}
	return nullptr;
}

void test_every_core_setting_is_declared_as_a_string(void **)
{
	for (const char *const *name = setting_names; *name != nullptr;
	     name++) {
		const struct setting_define *def = find(*name);
		if (def == nullptr)
			fail_msg("%s: not in the setting_parser_info", *name);
		bool tmpl = strcmp(*name, "rawlog_ext_dir") == 0 ||
			strcmp(*name, "rawlog_ext_lmtp_dir") == 0;
		assert_int_equal(def->type, tmpl ? SET_STR : SET_STR_NOVARS);
		// Its default is "", which settings_parse() takes as unset.
		const char *value = *reinterpret_cast<const char *const *>(
			static_cast<const char *>(
				rawlog_ext_setting_parser_info.defaults) +
			def->offset);
		assert_non_null(value);
		assert_string_equal(value, "");
	}
}

void test_nothing_else_is_declared(void **)
{
	size_t declared = 0, parsed = 0;
	for (const struct setting_define *def =
		     rawlog_ext_setting_parser_info.defines;
	     def->key != nullptr; def++) {
		// The control dict's filter (rawlog_ext_control { dict ... }),
		// which the dict code reads, not settings_parse().
		if (def->type == SET_FILTER_NAME) {
			assert_string_equal(def->key, "rawlog_ext_control");
			continue;
		}
		declared++;
	}
	for (const char *const *name = setting_names; *name != nullptr;
	     name++)
		parsed++;
	assert_int_equal(declared, parsed);
	assert_string_equal(rawlog_ext_setting_parser_info.name, "rawlog_ext");
}

} // namespace

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_core_setting_is_declared_as_a_string),
		cmocka_unit_test(test_nothing_else_is_declared),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
