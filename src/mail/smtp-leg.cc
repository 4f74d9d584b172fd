#include "smtp-leg.hh"
#include "../dovecot/guard.hh"

#include <vector>

DOVECOT_EXTERN_C_BEGIN
#include "connection.h"
DOVECOT_EXTERN_C_END

namespace rawlog_ext {

namespace {

struct Watch {
	struct smtp_client *client;
	struct connection_list *list;	// client's
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
		// A callback may unwatch: walk a copy. Each callback
		// guards itself.
		(void)guard(nullptr, "watching a connection", [&] {
			std::vector<Watch> current = watches;
			for (const Watch &watch : current) {
				if (conn->list != watch.list)
					continue;
				// nullptr if conn is not what we expect:
				// the callback says it does not log it.
				struct smtp_client_connection *sconn =
					internals::smtp_client_connection_of(
						watch.client, conn);
				if (sconn == nullptr || watch.conn == nullptr ||
				    watch.conn == sconn)
					watch.connected(sconn, conn,
							watch.context);
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
	struct connection_list *list =
		internals::smtp_client_connections(client);
	if (list == nullptr)
		return false;
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
	watches.push_back(Watch{client, list, conn, connected, context});
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

void smtp_leg_wrap(struct connection *conn, SessionLog *log)
{
	struct istream *input = istream_create_logging(conn->input, log);
	i_stream_unref(&conn->input);
	conn->input = input;
	struct ostream *output = ostream_create_logging(conn->output, log);
	o_stream_unref(&conn->output);
	conn->output = output;
}

void smtp_parser_follows_input(void *context)
{
	// False only where the streams could not have been wrapped either.
	(void)internals::smtp_server_parser_follow_input(
		static_cast<struct smtp_server_connection *>(context));
}

} // namespace rawlog_ext
