// Submission glue: the client session after login. The streams live in the
// smtp-server connection (its struct is public in smtp-server-private.h);
// the login process's pipelined bytes (e.g. MAIL FROM sent with AUTH) sit
// in the fd stream's buffer, so filters installed in the created hook,
// before the connection starts and sends "235 2.7.0 Logged in.", see the
// whole session. The relay leg to submission_relay_host is not logged yet.
#include "client-log.hh"

DOVECOT_EXTERN_C_BEGIN
#include "submission-common.h"
#include "submission-client.h"
#include "smtp-server-private.h"
DOVECOT_EXTERN_C_END

// Defined by the submission binary only: weak, so the module loads elsewhere.
#pragma weak submission_client_created_hook_set
#pragma weak submission_module_register

namespace rawlog_ext {

namespace {

struct SubmissionClientContext {
	union submission_module_context module_ctx;
	ClientLog *log;
};

MODULE_CONTEXT_DEFINE_INIT(submission_client_module,
			   &submission_module_register);

submission_client_created_func_t *next_hook_client_created;

void submission_client_destroy(struct client *client)
{
	auto *ctx = module_context<SubmissionClientContext>(
		client, submission_client_module);
	destroy_with_client_log(ctx->log, [&] {
		ctx->module_ctx.super.destroy(client);
	});
}

void submission_client_created(struct client **clientp)
{
	struct client *client = *clientp;
	SessionLog *log = session_log_open(client->user);
	if (log != nullptr) {
		auto *ctx = p_new(client->pool, SubmissionClientContext, 1);
		struct connection *conn = &client->conn->conn;
		ctx->log = new ClientLog(log, &conn->input, &conn->output,
					 nullptr, nullptr);
		ctx->module_ctx.super = client->v;
		client->v.destroy = submission_client_destroy;
		MODULE_CONTEXT_SET(client, submission_client_module, ctx);
	}
	if (next_hook_client_created != nullptr)
		next_hook_client_created(clientp);
}

} // namespace

bool submission_glue_init()
{
	if (submission_client_created_hook_set == nullptr)
		return false;
	next_hook_client_created =
		submission_client_created_hook_set(submission_client_created);
	return true;
}

void submission_glue_deinit()
{
	submission_client_created_hook_set(next_hook_client_created);
}

} // namespace rawlog_ext
