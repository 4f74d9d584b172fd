#include "smtp-leg.hh"
#include "../dovecot/guard.hh"

#include <vector>

DOVECOT_EXTERN_C_BEGIN
#include "smtp-command-parser.h"
#include "smtp-server-private.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {

namespace {

struct Watch {
	struct smtp_client *client;
	struct smtp_client_connection *conn;
	LegConnected connected;
	void *context;
};

std::vector<Watch> watches;
// lib-smtp's own vfunc: the same for every smtp_client's list.
void (*lib_client_connected)(struct connection *conn, bool success);

void leg_client_connected(struct connection *conn, bool success)
{
	if (success) {
		// struct connection is the first member.
		auto *sconn = reinterpret_cast<struct smtp_client_connection *>(
			conn);
		// A callback may unwatch: walk a copy. Each callback
		// guards itself.
		(void)guard(nullptr, "watching a connection", [&] {
			std::vector<Watch> current = watches;
			for (const Watch &watch : current) {
				if (watch.client == sconn->client &&
				    (watch.conn == nullptr ||
				     watch.conn == sconn))
					watch.connected(sconn, watch.context);
			}
		});
	}
	lib_client_connected(conn, success);
}

} // namespace

bool smtp_leg_watch(struct smtp_client *client,
		    struct smtp_client_connection *conn,
		    LegConnected connected, void *context)
{
	struct connection_list *list = client->conn_list;
	if (list->v.client_connected != leg_client_connected) {
		if (list->v.client_connected == nullptr ||
		    (lib_client_connected != nullptr &&
		     list->v.client_connected != lib_client_connected))
			return false;
		lib_client_connected = list->v.client_connected;
		list->v.client_connected = leg_client_connected;
	}
	// Connections copy the list's vfuncs when they are created.
	for (struct connection *c = list->connections; c != nullptr;
	     c = c->next) {
		if (c->v.client_connected == lib_client_connected)
			c->v.client_connected = leg_client_connected;
	}
	watches.push_back(Watch{client, conn, connected, context});
	return true;
}

void smtp_leg_unwatch(void *context)
{
	for (auto it = watches.begin(); it != watches.end();) {
		if (it->context == context)
			it = watches.erase(it);
		else
			++it;
	}
}

void smtp_leg_wrap(struct smtp_client_connection *sconn, SessionLog *log)
{
	struct connection *conn = &sconn->conn;
	struct istream *input = istream_create_logging(conn->input, log);
	i_stream_unref(&conn->input);
	conn->input = input;
	struct ostream *output = ostream_create_logging(conn->output, log);
	o_stream_unref(&conn->output);
	conn->output = output;
}

void smtp_parser_follows_input(void *context)
{
	auto *conn = static_cast<struct smtp_server_connection *>(context);
	if (conn->smtp_parser != nullptr)
		smtp_command_parser_set_stream(conn->smtp_parser,
					       conn->conn.input);
}

std::string smtp_leg_peer(const struct smtp_client_connection *conn)
{
	std::string peer = conn->host != nullptr ? conn->host :
		conn->path != nullptr ? conn->path : "";
	if (conn->port != 0)
		peer += ":" + std::to_string(conn->port);
	return peer;
}

} // namespace rawlog_ext
