// The private lib-smtp and lmtp state the LMTP and submission glue needs,
// reached only through these accessors. Each Dovecot line has its own
// implementation (internals-2.3/, internals-2.4/), written against that
// line's headers; each checks what it finds against Dovecot's public API
// where it can and returns false (or nullptr) instead of guessing. The
// caller then logs one "not logging X" line and goes on.
#ifndef RAWLOG_EXT_SMTP_INTERNALS_HH
#define RAWLOG_EXT_SMTP_INTERNALS_HH

#include "compat.hh"

#include <cstdlib>
#include <cstring>
#include <string>

struct smtp_server_connection;
struct smtp_server_transaction;
struct smtp_client;
struct smtp_client_connection;
struct lmtp_proxy;
struct connection;
struct connection_list;

namespace rawlog_ext {
namespace internals {

// Test builds only (configure --enable-fault-injection): with
// RAWLOG_EXT_REFUSE=<accessor> in the environment, that accessor finds
// what it checks unexpected, as it would in an unknown Dovecot version.
inline bool test_refuses(const char *accessor)
{
#ifdef RAWLOG_EXT_FAULT_INJECTION
	const char *refused = getenv("RAWLOG_EXT_REFUSE");
	return refused != nullptr && strcmp(refused, accessor) == 0;
#else
	(void)accessor;
	return false;
#endif
}

// --- smtp-server connections (the client side of lmtp and submission) ---

// The pointers conn reads and writes its streams through: filters put
// there see all of the connection. False if conn does not look like the
// connection the public API describes.
bool smtp_server_stream_slots(struct smtp_server_connection *conn,
			      struct istream ***input_r,
			      struct ostream ***output_r);

// After the input slot changed (logging moved above something lib-smtp
// stacked there): the command parser reads from the slot's stream again.
// False if that could not be done.
bool smtp_server_parser_follow_input(struct smtp_server_connection *conn);

enum class SmtpServerTls {
	// STARTTLS accepted, TLS not on the streams yet
	pending,
	// TLS is on the streams (below our filters' place)
	started,
	// disconnected, or the state cannot be told: stop logging
	gone,
};
// Where STARTTLS is on conn (once its 220 was sent).
SmtpServerTls smtp_server_tls_state(struct smtp_server_connection *conn);

// Input is read from the (new) input slot from now on: parser re-pointed,
// input handler recreated. False if not possible.
bool smtp_server_input_restart(struct smtp_server_connection *conn);

// The bytes input has handed out since it was created (v_offset of them),
// if its buffer still holds them all; false if not.
bool istream_consumed(struct istream *input, const unsigned char **data_r,
		      size_t *size_r);

// --- smtp-client connections (lmtp proxy legs, submission relay leg) ---

// The smtp_client conn belongs to, or nullptr.
struct smtp_client *smtp_client_of(struct smtp_client_connection *conn);

// The connection list of client's connections (whose client_connected
// vfunc sees every one of them connect), or nullptr.
struct connection_list *smtp_client_connections(struct smtp_client *client);

// The smtp_client_connection a struct connection of client's list is the
// head of, or nullptr (also if conn is not in client's list).
struct smtp_client_connection *
smtp_client_connection_of(struct smtp_client *client, struct connection *conn);

// What a leg's file names and checks need.
struct SmtpLegPeer {
	std::string peer;	// "host:port" or the socket path
	bool tls;		// TLS to the peer (ours would sit below it)
};
bool smtp_client_connection_peer(struct smtp_client_connection *conn,
				 SmtpLegPeer &peer_r);

// --- lmtp ---

// The smtp_client lmtp's proxy (private struct lmtp_proxy, lmtp-proxy.c)
// opens its backend connections from, or nullptr. client and trans are
// what the proxy must point back to; client_event is the lmtp client's
// event, which the smtp_client's event descends from.
struct smtp_client *lmtp_proxy_smtp_client(struct lmtp_proxy *proxy,
					   const void *client,
					   struct event *client_event,
					   struct smtp_server_transaction *trans);

} // namespace internals
} // namespace rawlog_ext

#endif
