// IMAP glue: attach a ClientLog to each logged client. COMPRESS
// (imap_zlib) stacks zlib on top of our filters; the command post-hook
// moves logging above it again, so the log stays readable.
#include "session.hh"
#include "../dovecot/client-log.hh"

DOVECOT_EXTERN_C_BEGIN
// 2.4.2+'s imap-client.h (in imap-common.h) uses enum imap_state_result
// without including it; 2.3 has it too.
#include "imap-state.h"
#include "imap-common.h"
#include "imap-client.h"
#include "imap-commands.h"
#include "imap-parser.h"
DOVECOT_EXTERN_C_END

#include "imap-core-rawlog.hh"	// per Dovecot line

// Defined by the imap binary only: weak, so the module loads elsewhere.
#pragma weak imap_client_created_hook_set
#pragma weak imap_module_register
#pragma weak command_hook_register
#pragma weak command_hook_unregister

namespace rawlog_ext {

namespace {

struct ImapClientContext {
	union imap_module_context module_ctx;
	ClientLog *log;
};

MODULE_CONTEXT_DEFINE_INIT(imap_client_module, &imap_module_register);

imap_client_created_func_t *next_hook_client_created;

// Parsers keep their own stream pointers (imap_zlib re-points them too).
void update_parser_streams(void *context)
{
	struct client *client = static_cast<struct client *>(context);
	if (client->free_parser != nullptr) {
		imap_parser_set_streams(client->free_parser, client->input,
					client->output);
	}
	for (struct client_command_context *cmd = client->command_queue;
	     cmd != nullptr; cmd = cmd->next) {
		// A command restored at unhibernation may have no parser.
		if (cmd->parser != nullptr) {
			imap_parser_set_streams(cmd->parser, client->input,
						client->output);
		}
	}
	imap_core_rawlog_follow(client);
}

void imap_command_post(struct client_command_context *cmd)
{
	struct client *client = cmd->client;
	auto *ctx = module_context<ImapClientContext>(client, imap_client_module);
	// Commands are also cancelled from within client_destroy().
	if (ctx != nullptr && !client->destroyed)
		ctx->log->sync();
}

void imap_command_pre(struct client_command_context *cmd)
{
	struct client *client = cmd->client;
	auto *ctx = module_context<ImapClientContext>(client, imap_client_module);
	if (ctx == nullptr || cmd->name == nullptr ||
	    strcasecmp(cmd->name, "COMPRESS") != 0)
		return;
	// Outermost on both sides first (COMPRESS may be the first command,
	// before any post-hook moved the output), so that with core rawlog
	// ours are the streams COMPRESS takes; logging goes on until they
	// are freed, then the post-hook wraps what replaced them.
	ctx->log->sync();
	if (imap_core_rawlog_compress_takes_ours(client)) {
		ctx->log->release();
	} else if (imap_core_rawlog_compress_asserts(client) &&
		   ctx->log->unstack()) {
		// Ours could not take core rawlog's place: COMPRESS needs
		// its streams on top.
		e_warning(client->event, "rawlog_ext: core rawlog_dir's "
			  "streams are not where COMPRESS needs them: "
			  "logging stopped");
	}
}

void imap_client_destroy(struct client *client, const char *reason)
{
	auto *ctx = module_context<ImapClientContext>(client, imap_client_module);
	destroy_with_client_log(ctx->log, [&] {
		ctx->module_ctx.super.destroy(client, reason);
	});
}

void imap_client_created(struct client **clientp)
{
	struct client *client = *clientp;
	SessionLog *log = session_log_open(client->user);
	ClientLog *client_log = log == nullptr ? nullptr :
		client_log_create(log, &client->input, &client->output,
				  update_parser_streams, client);
	if (client_log != nullptr) {
		auto *ctx = p_new(client->pool, ImapClientContext, 1);
		ctx->log = client_log;
		ctx->module_ctx.super = client->v;
		client->v.destroy = imap_client_destroy;
		MODULE_CONTEXT_SET(client, imap_client_module, ctx);
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
