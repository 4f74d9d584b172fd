// Dovecot 2.4: with rawlog_dir, imap remembers core rawlog's streams
// (client->post_rawlog_*) and COMPRESS asserts that they are the
// outermost ones, then frees them (cmd-compress.c). Our filters go on top
// of them at the first output (to see the commands pipelined with the
// login): they then take core rawlog's place in those pointers, so
// COMPRESS frees ours, then core rawlog's below, as it would its own.
// Where that cannot be done, the glue takes ours off before COMPRESS
// (imap_core_rawlog_compress_asserts()): never an assertion.
// Include after imap-client.h.
#ifndef RAWLOG_EXT_IMAP_CORE_RAWLOG_HH
#define RAWLOG_EXT_IMAP_CORE_RAWLOG_HH

#include "../compat.hh"
#include "../smtp-internals.hh"	// test_refuses()

namespace rawlog_ext {

// After logging moved to the client's outermost streams.
inline void imap_core_rawlog_follow(struct client *client)
{
	if (client->pre_rawlog_input == nullptr)
		return;	// no core rawlog
	struct istream *input = client->input;
	struct ostream *output = client->output;
	struct istream *rawlog_input = client->post_rawlog_input;
	// COMPRESS checks that freeing these leaves pre_rawlog_input at the
	// outer offset: true when both filters count from its offset 0 (ours
	// do, istream_continue_offsets()).
	if (internals::test_refuses("imap_core_rawlog_follow") ||
	    input->real_stream->parent != rawlog_input ||
	    output->real_stream->parent != client->post_rawlog_output ||
	    input->real_stream->parent_start_offset != 0 ||
	    rawlog_input->real_stream->parent_start_offset != 0)
		return;
	client->post_rawlog_input = input;
	client->post_rawlog_output = output;
}

// True before a COMPRESS that will free the client's outermost streams
// (then ours, see above): the caller drops its references to them.
inline bool imap_core_rawlog_compress_takes_ours(struct client *client)
{
	return client->pre_rawlog_input != nullptr &&
		client->multiplex_output == nullptr &&
		client->post_rawlog_input == client->input &&
		client->post_rawlog_output == client->output;
}

// True before a COMPRESS that would assert (core rawlog's streams not the
// outermost ones): the caller takes ours off the top.
inline bool imap_core_rawlog_compress_asserts(struct client *client)
{
	return client->pre_rawlog_input != nullptr &&
		client->multiplex_output == nullptr &&
		(client->post_rawlog_input != client->input ||
		 client->post_rawlog_output != client->output);
}

} // namespace rawlog_ext

#endif
