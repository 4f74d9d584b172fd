// doveadm rawlog prune [--older-than DURATION] [--max-total SIZE] [--dry-run] [DIR...]
// (issue #15 item 1): retention over the log trees. Oldest logs first (the
// name's time, then mtime), whole logs (a split log's .in and .out
// together), never one whose session still runs (its files' flock is
// held), until what is left is within --max-total and nothing is older
// than --older-than. DIRs default to the configuration's trees: the part
// of rawlog_ext_dir and rawlog_ext_lmtp_dir before their first variable.
// The walk and the choice are src/core/prune.cc's.
#include "../dovecot/compat.hh"
#include "../dovecot/global-dirs.hh"
#include "../core/control.hh"
#include "../core/prune.hh"
#include "../core/settings.hh"

#include "doveadm-rawlog.hh"

#include <algorithm>
#include <string>
#include <vector>

using namespace rawlog_ext;

namespace {

void print_row(const PruneFile &f, const std::string &action)
{
	doveadm_print(f.path.c_str());
	doveadm_print(std::to_string(f.size).c_str());
	doveadm_print(utc_time(f.log.parts.time).c_str());
	doveadm_print(action.c_str());
}

// Worst first: a failure outweighs a missing tree.
void fail(int code)
{
	if (doveadm_exit_code == 0 || code == EX_TEMPFAIL)
		doveadm_exit_code = code;
}

struct Options {
	PruneRule rule;
	bool dry_run = false;
	std::vector<std::string> dirs;	// given; empty = the configuration's
};

// Everything is read before any tree: a bad option removes nothing.
Options parse_options(struct doveadm_cmd_context *cctx)
{
	Options o;
	const char *value;
	bool have_age = false;
	if (doveadm_cmd_param_str(cctx, "older-than", &value)) {
		if (!parse_duration(value, o.rule.older_than) ||
		    o.rule.older_than <= 0)
			i_fatal_status(EX_USAGE, "rawlog prune: --older-than %s: "
				       "expected a duration such as 90s, 30m, "
				       "12h or 30d", value);
		have_age = true;
	}
	if (doveadm_cmd_param_str(cctx, "max-total", &value)) {
		if (!parse_size(value, o.rule.max_total))
			i_fatal_status(EX_USAGE, "rawlog prune: --max-total %s: "
				       "expected a size such as 512k, 100M or "
				       "2G", value);
		o.rule.has_max_total = true;
	}
	if (!have_age && !o.rule.has_max_total)
		i_fatal_status(EX_USAGE, "rawlog prune: --older-than or "
			       "--max-total is required");
	bool dry_run;
	if (doveadm_cmd_param_bool(cctx, "dry-run", &dry_run))
		o.dry_run = dry_run;
	const char *const *dirs;
	if (doveadm_cmd_param_array(cctx, "dir", &dirs)) {
		for (; *dirs != nullptr; dirs++) {
			if (**dirs == '\0')
				i_fatal_status(EX_USAGE,
					       "rawlog prune: an empty DIR");
			o.dirs.push_back(*dirs);
		}
	}
	return o;
}

// The configuration's trees. False (with the exit code set) if none.
bool configured_roots(struct doveadm_cmd_context *cctx,
		      std::vector<std::string> &roots_r)
{
	std::vector<ConfiguredDir> dirs;
	std::string error;
	if (!configured_log_dirs(doveadm_settings_event(cctx), dirs, error)) {
		i_error("rawlog prune: reading the configuration failed: %s",
			error.c_str());
		fail(EX_TEMPFAIL);
		return false;
	}
	if (dirs.empty()) {
		i_error("rawlog prune: neither rawlog_ext_dir nor "
			"rawlog_ext_lmtp_dir is set: give the trees as DIRs");
		fail(EX_CONFIG);
		return false;
	}
	for (const ConfiguredDir &d : dirs) {
		const std::string root = prune_template_root(d.tmpl);
		if (root.empty()) {
			i_warning("rawlog prune: %s=%s starts with a variable: "
				  "it cannot be pruned globally, skipped "
				  "(give its trees as DIRs)", d.setting,
				  d.tmpl.c_str());
			continue;
		}
		if (std::find(roots_r.begin(), roots_r.end(), root) ==
		    roots_r.end())
			roots_r.push_back(root);
	}
	return true;
}

void prune(struct doveadm_cmd_context *cctx)
{
	const Options o = parse_options(cctx);
	doveadm_print_init(DOVEADM_PRINT_TYPE_TABLE);
	doveadm_print_header("path", "Path", no_flags);
	doveadm_print_header("bytes", "Bytes",
			     DOVEADM_PRINT_HEADER_FLAG_RIGHT_JUSTIFY);
	doveadm_print_header("time", "Time", no_flags);
	doveadm_print_header("action", "Action", no_flags);

	const bool given = !o.dirs.empty();
	std::vector<std::string> roots = o.dirs;
	if (!given && !configured_roots(cctx, roots))
		return;

	std::vector<PruneFile> files;
	std::vector<std::string> scanned(roots.size());
	for (size_t i = 0; i < roots.size(); i++) {
		std::vector<std::string> warnings;
		std::string error;
		bool missing;
		if (!prune_scan(roots[i], i, files, warnings, missing, error)) {
			// A configured tree nothing was logged to yet: fine.
			if (missing && !given)
				continue;
			i_error("rawlog prune: %s", error.c_str());
			fail(missing ? EX_NOINPUT : EX_TEMPFAIL);
			continue;
		}
		for (const std::string &w : warnings)
			i_warning("rawlog prune: %s", w.c_str());
	}

	std::vector<PruneLog> logs = prune_group(std::move(files));
	PruneRule rule = o.rule;
	rule.now = time(nullptr);
	(void)prune_select(logs, rule);

	for (const PruneLog &log : logs) {
		if (!log.kept.empty()) {
			for (const PruneFile &f : log.files)
				print_row(f, "kept: " + (f.kept.empty() ?
							 log.kept : f.kept));
			continue;
		}
		if (!log.remove)
			continue;
		if (o.dry_run) {
			for (const PruneFile &f : log.files)
				print_row(f, "would delete");
			continue;
		}
		std::string kept, error;
		switch (prune_remove(roots, log, kept, error)) {
		case PruneRemoved::removed:
			for (const PruneFile &f : log.files)
				print_row(f, "deleted");
			break;
		case PruneRemoved::kept:
			for (const PruneFile &f : log.files)
				print_row(f, "kept: " + kept);
			break;
		case PruneRemoved::failed:
			i_error("rawlog prune: %s", error.c_str());
			fail(EX_TEMPFAIL);
			for (const PruneFile &f : log.files)
				print_row(f, "failed");
			break;
		}
	}
}

} // namespace

extern "C" void rawlog_ext_cmd_prune(struct doveadm_cmd_context *cctx)
{
	(void)guarded("rawlog prune", nullptr, [&] {
		prune(cctx);
		return 0;
	});
}
