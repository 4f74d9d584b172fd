// smtp-internals.hh for Dovecot 2.4 (written against 2.4.1's
// smtp-server-private.h, smtp-client-private.h and lmtp-proxy.c; the
// fields read here are unchanged through 2.4.4).
#include "../smtp-internals.hh"

DOVECOT_EXTERN_C_BEGIN
#include "connection.h"
#include "smtp-command-parser.h"
#include "smtp-server-private.h"
#include "smtp-client-private.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {
namespace internals {

namespace {

// conn as smtp-server-private.h describes it: what the public getters
// return must be the very fields they are read from. session_id is a
// pointer of conn's own, so finding it where we look is a strong check.
bool server_conn_known(struct smtp_server_connection *conn)
{
	if (conn == nullptr)
		return false;
	struct smtp_proxy_data proxy_data;
	smtp_server_connection_get_proxy_data(conn, &proxy_data);
	return smtp_server_connection_get_context(conn) == conn->context &&
		proxy_data.session == conn->session_id &&
		proxy_data.login == conn->username &&
		proxy_data.source_port == conn->conn.remote_port &&
		net_ip_compare(&proxy_data.source_ip, &conn->conn.remote_ip);
}

// The same for a client connection: its state is a field far into the
// struct, after the ones we read; its remote IP is read from the struct
// connection we take to be its head.
bool client_conn_known(struct smtp_client_connection *conn)
{
	if (conn == nullptr ||
	    smtp_client_connection_get_state(conn) != conn->state ||
	    conn->client == nullptr)
		return false;
	struct ip_addr ip;
	smtp_client_connection_get_remote_ip(conn, &ip);
	return net_ip_compare(&ip, &conn->conn.remote_ip);
}

} // namespace

bool smtp_server_stream_slots(struct smtp_server_connection *conn,
			      struct istream ***input_r,
			      struct ostream ***output_r)
{
	if (test_refuses("smtp_server_stream_slots") ||
	    !server_conn_known(conn) || conn->conn.input == nullptr ||
	    conn->conn.output == nullptr ||
	    i_stream_get_fd(conn->conn.input) != conn->conn.fd_in ||
	    o_stream_get_fd(conn->conn.output) != conn->conn.fd_out)
		return false;
	*input_r = &conn->conn.input;
	*output_r = &conn->conn.output;
	return true;
}

bool smtp_server_parser_follow_input(struct smtp_server_connection *conn)
{
	if (!server_conn_known(conn) || conn->smtp_parser == nullptr ||
	    conn->conn.input == nullptr)
		return false;
	smtp_command_parser_set_stream(conn->smtp_parser, conn->conn.input);
	return true;
}

SmtpServerTls smtp_server_tls_state(struct smtp_server_connection *conn)
{
	if (test_refuses("smtp_server_tls_state") || !server_conn_known(conn) || conn->disconnected ||
	    conn->conn.input == nullptr || conn->conn.output == nullptr)
		return SmtpServerTls::gone;
	if (conn->ssl_iostream == nullptr)
		return SmtpServerTls::pending;
	// lib-smtp says secured once the handshake has begun; TLS there
	// without it means it failed.
	return smtp_server_connection_is_ssl_secured(conn) ?
		SmtpServerTls::started : SmtpServerTls::gone;
}

bool smtp_server_input_restart(struct smtp_server_connection *conn)
{
	if (test_refuses("smtp_server_input_restart") ||
	    !smtp_server_parser_follow_input(conn))
		return false;
	smtp_server_connection_input_halt(conn);
	smtp_server_connection_input_resume(conn);
	return true;
}

bool istream_consumed(struct istream *input, const unsigned char **data_r,
		      size_t *size_r)
{
	// istream-private.h: buffer[skip..pos) is unread, buffer[0..skip)
	// read; buffer[0] is the stream's first byte iff skip == v_offset.
	if (test_refuses("istream_consumed") || input == nullptr ||
	    input->real_stream == nullptr)
		return false;
	const struct istream_private *stream = input->real_stream;
	if (&stream->istream != input || stream->buffer == nullptr ||
	    stream->skip != input->v_offset || stream->skip > stream->pos)
		return false;
	*data_r = stream->buffer;
	*size_r = stream->skip;
	return true;
}

struct smtp_client *smtp_client_of(struct smtp_client_connection *conn)
{
	if (test_refuses("smtp_client_of") || !client_conn_known(conn) ||
	    conn->client->conn_list != conn->conn.list)
		return nullptr;
	return conn->client;
}

struct connection_list *smtp_client_connections(struct smtp_client *client)
{
	if (test_refuses("smtp_client_connections") || client == nullptr ||
	    client->conn_list == nullptr)
		return nullptr;
	// Every connection already there must be one of client's.
	for (struct connection *c = client->conn_list->connections;
	     c != nullptr; c = c->next) {
		if (smtp_client_connection_of(client, c) == nullptr)
			return nullptr;
	}
	return client->conn_list;
}

struct smtp_client_connection *
smtp_client_connection_of(struct smtp_client *client, struct connection *conn)
{
	if (client == nullptr || conn == nullptr ||
	    conn->list != client->conn_list)
		return nullptr;
	// struct connection is its first member.
	auto *sconn = reinterpret_cast<struct smtp_client_connection *>(conn);
	if (!client_conn_known(sconn) || sconn->client != client)
		return nullptr;
	return sconn;
}

bool smtp_client_connection_peer(struct smtp_client_connection *conn,
				 SmtpLegPeer &peer_r)
{
	if (test_refuses("smtp_client_connection_peer") ||
	    !client_conn_known(conn) ||
	    (conn->conn.remote_ip.family != 0 &&
	     conn->conn.remote_port != conn->port))
		return false;
	peer_r.peer = conn->host != nullptr ? conn->host :
		conn->path != nullptr ? conn->path : "";
	if (conn->port != 0)
		peer_r.peer += ":" + std::to_string(conn->port);
	peer_r.tls = conn->ssl_mode != SMTP_CLIENT_SSL_MODE_NONE;
	return true;
}

namespace {

// The head of lmtp-proxy.c's private struct lmtp_proxy (2.4.1; the same
// through 2.4.4).
struct LmtpProxyHead {
	const void *client;
	struct smtp_server_transaction *trans;
	struct smtp_client *lmtp_client;
};

} // namespace

struct smtp_client *lmtp_proxy_smtp_client(struct lmtp_proxy *proxy,
					   const void *client,
					   struct event *client_event,
					   struct smtp_server_transaction *trans)
{
	if (test_refuses("lmtp_proxy_smtp_client") || proxy == nullptr ||
	    trans == nullptr)
		return nullptr;
	auto *head = reinterpret_cast<const LmtpProxyHead *>(proxy);
	if (head->client != client || head->trans != trans ||
	    head->lmtp_client == nullptr)
		return nullptr;
	// lmtp_proxy_init() makes the client's event a child of lmtp's.
	struct smtp_client *smtp = head->lmtp_client;
	if (smtp->event == nullptr || event_get_parent(smtp->event) !=
	    client_event)
		return nullptr;
	return smtp;
}

} // namespace internals
} // namespace rawlog_ext
