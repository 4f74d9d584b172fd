// POP3 glue. As in imap, pop3 stacks the bytes pop3-login read after PASS
// on top of client->input after the created hook -- and handles them at
// once, corking the output first. So the output is wrapped in the hook and
// the input at that first cork.
#include "session.hh"

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
	struct client *client;
	SessionLog *log;
	struct istream *input;
	struct ostream *output;
};

MODULE_CONTEXT_DEFINE_INIT(pop3_client_module, &pop3_module_register);

pop3_client_created_func_t *next_hook_client_created;

void first_output(void *context)
{
	auto *ctx = static_cast<Pop3ClientContext *>(context);
	struct client *client = ctx->client;
	struct istream *input = istream_create_logging(client->input, ctx->log);
	i_stream_unref(&client->input);
	client->input = input;
	ctx->input = input;
	i_stream_ref(ctx->input);
}

void pop3_client_destroy(struct client *client, const char *reason)
{
	auto *ctx = module_context<Pop3ClientContext>(client, pop3_client_module);
	i_stream_unref(&ctx->input);
	o_stream_unref(&ctx->output);
	SessionLog::unref(&ctx->log);
	ctx->module_ctx.super.destroy(client, reason);
}

void pop3_client_created(struct client **clientp)
{
	struct client *client = *clientp;
	if (mail_user_is_plugin_loaded(client->user, mail_module)) {
		SessionLog *log = session_log_open(client->user);
		if (log != nullptr) {
			auto *ctx = p_new(client->pool, Pop3ClientContext, 1);
			ctx->client = client;
			ctx->log = log;
			ctx->module_ctx.super = client->v;
			client->v.destroy = pop3_client_destroy;
			MODULE_CONTEXT_SET(client, pop3_client_module, ctx);

			struct ostream *old_output = client->output;
			client->output = ostream_create_logging(
				old_output, log, first_output, ctx);
			o_stream_unref(&old_output);
			ctx->output = client->output;
			o_stream_ref(ctx->output);
		}
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
