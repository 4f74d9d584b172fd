// The viewer's reading of log file names and their grouping into
// sessions (view/sessions.hh): names as log_base_name() writes them.
#include "test-common.hh"

#include "view/sessions.hh"

#include <string>

using namespace rawlog_ext;

namespace {

NameParts parts(const char *service, const char *session, const char *peer,
		const char *ip)
{
	NameParts p;
	p.time = 1764689556;	// 2025-12-02T15:32:36Z
	p.service = service;
	p.session = session;
	p.pid = 4242;
	p.hostname = "mx1.example.org";
	p.peer = peer;
	p.ip = ip;
	return p;
}

void test_parse_reads_back_what_log_base_name_writes(void **)
{
	// Every field combination the module writes, each extension, sealed
	// or not, with and without the collision counter.
	const NameParts cases[] = {
		parts("imap", "k2Bp/9+4xcBAAQAB", "", ""),
		parts("imap", "k2Bp9+4xcBAAQAB", "", "192.0.2.7"),
		parts("pop3", "abc==", "", "::1"),
		parts("imap-login", "S1", "", "2001:db8::5"),
		parts("imap-login-proxy", "S1", "10.0.0.2:143", "127.0.0.1"),
		parts("imap-login-proxy", "S1", "backend.example:1143", ""),
		parts("submission-relay", "S2", "smtp.example.org:25", "10.1.1.1"),
		parts("lmtp-proxy", "S3", "10.0.0.3:24", ""),
		parts("lmtp", "S4", "", "127.0.0.1"),
	};
	for (const NameParts &c : cases) {
		for (unsigned int n : { 0u, 1u, 17u }) {
			for (const char *ext : { ".in", ".out", ".log", ".in.age",
						  ".log.age" }) {
				const std::string stem = log_base_name(c, n);
				const std::string name = stem + ext;
				LogName r;
				if (!parse_log_name(name, r))
					fail_msg("%s not read", name.c_str());
				assert_int_equal(r.parts.time, c.time);
				assert_string_equal(r.parts.service.c_str(),
						    c.service.c_str());
				assert_string_equal(r.parts.session.c_str(),
						    sanitize_name_field(c.session).c_str());
				assert_int_equal(r.parts.pid, c.pid);
				assert_string_equal(r.parts.hostname.c_str(),
						    c.hostname.c_str());
				assert_string_equal(r.parts.peer.c_str(),
						    c.peer.empty() ? "" :
						    sanitize_name_field(c.peer).c_str());
				assert_string_equal(r.parts.ip.c_str(),
						    c.ip.empty() ? "" :
						    sanitize_name_field(c.ip).c_str());
				assert_int_equal(r.n, n);
				assert_int_equal(r.sealed,
						 std::string(ext).find(".age") !=
						 std::string::npos);
				assert_string_equal(r.stem.c_str(), stem.c_str());
			}
		}
	}
}

void test_parse_refuses_other_names(void **)
{
	static const char *const bad[] = {
		"",
		".in",
		"notes.txt",
		"20251202T153236Z_imap_S_1_host",		// no extension
		"20251202T153236Z_imap_S_1_host.txt",
		"20251202T153236Z_imap_S_1.in",			// no hostname
		"20251202T153236Z_imap_S_x_host.in",		// pid not digits
		"20251202T153236_imap_S_1_host.in",		// no Z
		"20251302T153236Z_imap_S_1_host.in",		// month 13
		"20250231T153236Z_imap_S_1_host.in",		// 31 February
		"20251202T253236Z_imap_S_1_host.in",		// hour 25
		"20251202T153236Z_imap__1_host.in",		// empty session
		"20251202T153236Z_imap_S_1_host_a_b.in",	// two fields: no leg
		"20251202T153236Z_imap_S_1_host_1.2.3.4_x_1.in",
		"20251202T153236Z_lmtp-proxy_S_1_host.in",	// leg without peer
		"20251202T153236Z_imap_S_1_host_01.in",		// counter "01"
		"20251202T153236Z_imap_S/x_1_host.in",		// not a name field
		"20251202T153236Z_imap_S_1_h st.in",
		"20251202T153236Z_imap_S_1_host.in.gz",
	};
	for (const char *name : bad) {
		LogName r;
		if (parse_log_name(name, r))
			fail_msg("\"%s\" read as a log name", name);
	}
}

void test_leg_of(void **)
{
	assert_string_equal(leg_of("imap").c_str(), "session");
	assert_string_equal(leg_of("lmtp").c_str(), "session");
	assert_string_equal(leg_of("imap-login").c_str(), "pre-login");
	assert_string_equal(leg_of("submission-login").c_str(), "pre-login");
	assert_string_equal(leg_of("imap-login-proxy").c_str(), "backend");
	assert_string_equal(leg_of("lmtp-proxy").c_str(), "backend");
	assert_string_equal(leg_of("submission-relay").c_str(), "relay");
}

void test_user_from_login_dir(void **)
{
	assert_string_equal(user_from_login_dir("alice").c_str(), "alice");
	assert_string_equal(user_from_login_dir("a@example.org").c_str(),
			    "a@example.org");
	assert_string_equal(user_from_login_dir("a%2Fb%25").c_str(), "a/b%");
	assert_string_equal(user_from_login_dir("%2E%2E").c_str(), "..");
	// Not an escape the companion writes: kept as it is.
	assert_string_equal(user_from_login_dir("a%zz%4").c_str(), "a%zz%4");
}

void test_parse_utc_time(void **)
{
	time_t t = 0;
	assert_true(parse_utc_time("2025-12-02", t));
	assert_int_equal(t, 1764633600);
	assert_true(parse_utc_time("2025-12-02T15:32", t));
	assert_int_equal(t, 1764689520);
	assert_true(parse_utc_time("2025-12-02T15:32:36", t));
	assert_int_equal(t, 1764689556);
	for (const char *bad : { "", "2025-12", "2025-12-02T15", "2025-12-02 15:32",
				 "2025-13-01", "2025-02-30", "2025-12-02T24:00",
				 "2025-12-02T15:32:3", "2025-12-02T15:32:36Z",
				 "x025-12-02", "2025/12/02" }) {
		if (parse_utc_time(bad, t))
			fail_msg("\"%s\" read as a time", bad);
	}
	assert_string_equal(utc_iso(1764689556).c_str(), "2025-12-02T15:32:36Z");
}

LogFile file(const std::string &dir, const NameParts &p, const char *ext,
	     uint64_t size, time_t mtime)
{
	LogFile f;
	f.path = "/top/" + (dir.empty() ? "" : dir + "/") + log_base_name(p) + ext;
	f.dir_name = dir;
	assert_true(parse_log_name(log_base_name(p) + ext, f.name));
	f.size = size;
	f.mtime = mtime;
	return f;
}

void test_group_sessions(void **)
{
	// One proxied-and-logged session: the login companion's file in
	// alice's directory, the mail process's pair in "mail-dir", a
	// backend leg; another session before it, one after, one of an
	// unknown user.
	NameParts login = parts("imap-login", "S1", "", "127.0.0.1");
	NameParts mail = parts("imap", "S1", "", "127.0.0.1");
	mail.time += 1;
	NameParts backend = parts("imap-login-proxy", "S1", "127.0.0.1:10143",
				  "127.0.0.1");
	backend.time += 1;
	NameParts earlier = parts("pop3", "S0", "", "192.0.2.9");
	earlier.time -= 60;
	NameParts later = parts("submission", "S2", "", "");
	later.time += 60;
	NameParts relay = parts("submission-relay", "S2", "mx:25", "");
	relay.time += 60;	// the submission's second: still after it
	NameParts nobody = parts("imap-login", "S3", "", "");
	nobody.time += 120;
	std::vector<LogFile> files = {
		file("mail-dir", mail, ".out", 200, mail.time + 5),
		file("a%2Fb", login, ".log", 1000, login.time + 9),
		file("mail-dir", mail, ".in", 100, mail.time + 4),
		file("a%2Fb", backend, ".in", 10, backend.time + 1),
		file("bob", earlier, ".log", 7, earlier.time),
		file("", later, ".log", 1, later.time + 2),
		file("", relay, ".in", 2, relay.time),
		file("", nobody, ".log", 3, nobody.time),
	};
	std::vector<SessionEntry> s = group_sessions(files);
	assert_int_equal(s.size(), 4);
	assert_string_equal(s[0].id.c_str(), "S0");
	assert_string_equal(s[0].user.c_str(), "bob");
	assert_string_equal(s[1].id.c_str(), "S1");
	// The login companion's user wins over the mail directory's name.
	assert_string_equal(s[1].user.c_str(), "a/b");
	assert_int_equal(s[1].files.size(), 4);
	assert_int_equal(s[1].bytes, 1310);
	assert_int_equal(s[1].start, login.time);
	assert_int_equal(s[1].last_mtime, login.time + 9);
	// In one second: the mail process's file before the leg's, though
	// "imap-login-proxy_" sorts before "imap_".
	assert_true(s[1].services == std::vector<std::string>({ "imap-login",
		"imap", "imap-login-proxy" }));
	assert_int_equal(s[1].ips.size(), 1);
	assert_string_equal(s[1].ips[0].c_str(), "127.0.0.1");
	assert_string_equal(s[1].files[0].name.parts.service.c_str(), "imap-login");
	assert_string_equal(s[2].id.c_str(), "S2");
	assert_string_equal(s[2].user.c_str(), "");
	assert_true(s[2].services == std::vector<std::string>({ "submission",
		"submission-relay" }));
	assert_int_equal(s[2].ips.size(), 0);
	assert_string_equal(s[3].id.c_str(), "S3");
	assert_string_equal(s[3].user.c_str(), "");
}

void test_user_of(void **)
{
	NameParts mail = parts("imap", "S1", "", "");
	assert_string_equal(user_of(file("", mail, ".in", 0, 0)).c_str(), "");
	// A mail log's directory name is taken as it is: only the login
	// companion escapes user names in its directories.
	assert_string_equal(user_of(file("x%2Fy", mail, ".in", 0, 0)).c_str(),
			    "x%2Fy");
	NameParts login = parts("pop3-login", "S1", "", "");
	assert_string_equal(user_of(file("x%2Fy", login, ".in", 0, 0)).c_str(),
			    "x/y");
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_reads_back_what_log_base_name_writes),
		cmocka_unit_test(test_parse_refuses_other_names),
		cmocka_unit_test(test_leg_of),
		cmocka_unit_test(test_user_from_login_dir),
		cmocka_unit_test(test_parse_utc_time),
		cmocka_unit_test(test_group_sessions),
		cmocka_unit_test(test_user_of),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
