// POP3 glue: attach a ClientLog to each logged client. pop3 handles the
// commands pipelined with PASS right after stacking them on the input,
// corking the output first: that cork is the "first output" ClientLog
// waits for.
#include "session.hh"
#include "../dovecot/client-log.hh"

DOVECOT_EXTERN_C_BEGIN
// pop3-client.h uses enum uidl_keys from pop3-common.h: include that first.
#include "pop3-common.h"
#include "pop3-client.h"
DOVECOT_EXTERN_C_END

// Defined by the pop3 binary only: weak, so the module loads elsewhere.
#pragma weak pop3_client_created_hook_set
#pragma weak pop3_module_register

namespace rawlog_ext {

namespace {

struct Pop3ClientContext {
	union pop3_module_context module_ctx;
	ClientLog *log;
};

MODULE_CONTEXT_DEFINE_INIT(pop3_client_module, &pop3_module_register);

pop3_client_created_func_t *next_hook_client_created;

void pop3_client_destroy(struct client *client, const char *reason)
{
	auto *ctx = module_context<Pop3ClientContext>(client, pop3_client_module);
	destroy_with_client_log(ctx->log, [&] {
		ctx->module_ctx.super.destroy(client, reason);
	});
}

void pop3_client_created(struct client **clientp)
{
	struct client *client = *clientp;
	SessionLog *log = session_log_open(client->user);
	ClientLog *client_log = log == nullptr ? nullptr :
		client_log_create(log, &client->input, &client->output,
				  nullptr, nullptr);
	if (client_log != nullptr) {
		auto *ctx = p_new(client->pool, Pop3ClientContext, 1);
		ctx->log = client_log;
		ctx->module_ctx.super = client->v;
		client->v.destroy = pop3_client_destroy;
		MODULE_CONTEXT_SET(client, pop3_client_module, ctx);
	}
	if (next_hook_client_created != nullptr)
		next_hook_client_created(clientp);
}

} // namespace

bool pop3_glue_init()
{
	if (pop3_client_created_hook_set == nullptr)
		return false;
	next_hook_client_created =
		pop3_client_created_hook_set(pop3_client_created);
	return true;
}

void pop3_glue_deinit()
{
	pop3_client_created_hook_set(next_hook_client_created);
}

} // namespace rawlog_ext
