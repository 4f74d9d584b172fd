#include "doveconf-run.hh"

#include <cerrno>
#include <climits>
#include <cstring>
#include <sys/wait.h>
#include <unistd.h>

DOVECOT_EXTERN_C_BEGIN
#include "master-service.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {

bool doveconf_run(const std::vector<std::string> &args, std::string &out_r,
		  std::string &error_r)
{
	// Beside this doveadm (/usr/bin); for doveadm-server (in
	// $libexecdir/dovecot) the bin dir of the same prefix.
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		error_r = std::string("readlink(/proc/self/exe) failed: ") +
			strerror(errno);
		return false;
	}
	exe[n] = '\0';
	std::string dir(exe);
	dir.erase(dir.rfind('/') + 1);
	std::string doveconf;
	for (const std::string &candidate : { dir + "doveconf",
					      dir + "../../bin/doveconf",
					      std::string("/usr/bin/doveconf") }) {
		if (access(candidate.c_str(), X_OK) == 0) {
			doveconf = candidate;
			break;
		}
	}
	if (doveconf.empty()) {
		error_r = "doveconf not found beside " + std::string(exe);
		return false;
	}
	std::vector<const char *> argv = { "doveconf", "-c",
		master_service_get_config_path(master_service) };
	for (const std::string &a : args)
		argv.push_back(a.c_str());
	argv.push_back(nullptr);
	int fds[2];
	if (pipe(fds) < 0) {
		error_r = std::string("pipe() failed: ") + strerror(errno);
		return false;
	}
	pid_t pid = fork();
	if (pid < 0) {
		error_r = std::string("fork() failed: ") + strerror(errno);
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		// Nothing of doveadm's but stdin, stdout, stderr.
		closefrom(STDERR_FILENO + 1);
		execv(doveconf.c_str(), const_cast<char *const *>(argv.data()));
		_exit(127);
	}
	close(fds[1]);
	std::string out;
	char buf[4096];
	for (;;) {
		ssize_t r = read(fds[0], buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		out.append(buf, (size_t)r);
	}
	close(fds[0]);
	int status = 0;
	pid_t waited;
	while ((waited = waitpid(pid, &status, 0)) < 0 && errno == EINTR) ;
	if (waited != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		error_r = doveconf + " failed (exit status " +
			std::to_string(waited == pid && WIFEXITED(status) ?
				       WEXITSTATUS(status) : -1) + ")";
		return false;
	}
	out_r = out;
	return true;
}

} // namespace rawlog_ext
