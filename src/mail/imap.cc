// IMAP glue. The output is wrapped when the client is created, before the
// login reply. The input is wrapped at the first output, because imap
// stacks the bytes imap-login read after LOGIN (pipelined commands) on top
// of client->input only after the created hook; a filter installed in the
// hook would miss them. COMPRESS (imap_zlib) stacks zlib on top of us; the
// command post-hook then moves logging above it, so the log stays readable.
#include "session.hh"

DOVECOT_EXTERN_C_BEGIN
#include "imap-common.h"
#include "imap-client.h"
#include "imap-commands.h"
#include "imap-parser.h"
DOVECOT_EXTERN_C_END

// Defined by the imap binary only: weak, so the module loads elsewhere.
#pragma weak imap_client_created_hook_set
#pragma weak imap_module_register
#pragma weak command_hook_register
#pragma weak command_hook_unregister

namespace rawlog_ext {

namespace {

struct ImapClientContext {
	union imap_module_context module_ctx;
	struct client *client;
	SessionLog *log;
	// Our outermost filters (referenced), to notice when something is
	// stacked on top of them.
	struct istream *input;
	struct ostream *output;
};

MODULE_CONTEXT_DEFINE_INIT(imap_client_module, &imap_module_register);

imap_client_created_func_t *next_hook_client_created;

// Parsers keep their own stream pointers (imap_zlib does the same).
void update_parser_streams(struct client *client)
{
	if (client->free_parser != nullptr) {
		imap_parser_set_streams(client->free_parser, client->input,
					client->output);
	}
	for (struct client_command_context *cmd = client->command_queue;
	     cmd != nullptr; cmd = cmd->next) {
		imap_parser_set_streams(cmd->parser, client->input,
					client->output);
	}
}

void wrap_input(ImapClientContext *ctx)
{
	struct client *client = ctx->client;
	if (ctx->input != nullptr) {
		istream_stop_logging(ctx->input);
		i_stream_unref(&ctx->input);
	}
	struct istream *input = istream_create_logging(client->input, ctx->log);
	i_stream_unref(&client->input);
	client->input = input;
	ctx->input = input;
	i_stream_ref(ctx->input);
	update_parser_streams(client);
}

void first_output(void *context);

void wrap_output(ImapClientContext *ctx)
{
	struct client *client = ctx->client;
	if (ctx->output != nullptr) {
		ostream_stop_logging(ctx->output);
		o_stream_unref(&ctx->output);
	}
	struct ostream *old_output = client->output;
	// Until the input is wrapped, the new outermost filter carries the
	// "wrap the input at the first output" duty.
	client->output = ostream_create_logging(
		old_output, ctx->log,
		ctx->input == nullptr ? first_output : nullptr, ctx);
	// Keep the byte counters of the logout line going.
	client->output->offset = old_output->offset;
	o_stream_unref(&old_output);
	ctx->output = client->output;
	o_stream_ref(ctx->output);
	update_parser_streams(client);
}

void first_output(void *context)
{
	wrap_input(static_cast<ImapClientContext *>(context));
}

void imap_command_post(struct client_command_context *cmd)
{
	struct client *client = cmd->client;
	auto *ctx = module_context<ImapClientContext>(client, imap_client_module);
	if (ctx == nullptr)
		return;
	if (client->output != ctx->output)
		wrap_output(ctx);
	if (ctx->input != nullptr && client->input != ctx->input)
		wrap_input(ctx);
}

void imap_command_pre(struct client_command_context *)
{
}

void imap_client_destroy(struct client *client, const char *reason)
{
	auto *ctx = module_context<ImapClientContext>(client, imap_client_module);
	i_stream_unref(&ctx->input);
	o_stream_unref(&ctx->output);
	SessionLog::unref(&ctx->log);
	ctx->module_ctx.super.destroy(client, reason);
}

void imap_client_created(struct client **clientp)
{
	struct client *client = *clientp;
	if (mail_user_is_plugin_loaded(client->user, mail_module)) {
		SessionLog *log = session_log_open(client->user);
		if (log != nullptr) {
			auto *ctx = p_new(client->pool, ImapClientContext, 1);
			ctx->client = client;
			ctx->log = log;
			ctx->module_ctx.super = client->v;
			client->v.destroy = imap_client_destroy;
			MODULE_CONTEXT_SET(client, imap_client_module, ctx);
			wrap_output(ctx);
		}
	}
	if (next_hook_client_created != nullptr)
		next_hook_client_created(clientp);
}

} // namespace

bool imap_glue_init()
{
	if (imap_client_created_hook_set == nullptr)
		return false;
	next_hook_client_created =
		imap_client_created_hook_set(imap_client_created);
	command_hook_register(imap_command_pre, imap_command_post);
	return true;
}

void imap_glue_deinit()
{
	command_hook_unregister(imap_command_pre, imap_command_post);
	imap_client_created_hook_set(next_hook_client_created);
}

} // namespace rawlog_ext
