// The legs Dovecot itself opens with lib-smtp's client: submission's relay
// and LMTP's proxy connections. lib-smtp has no hook for them, but every
// connection of an smtp_client comes up through its connection list's
// client_connected vfunc, after the socket streams exist and before the
// library stacks anything on them (its own rawlog, TLS) or reads from
// them. We chain onto that vfunc for the clients we are asked to watch.
// What is private in lib-smtp is reached through smtp-internals.hh.
#ifndef RAWLOG_EXT_SMTP_LEG_HH
#define RAWLOG_EXT_SMTP_LEG_HH

#include "session.hh"
#include "../dovecot/smtp-internals.hh"

namespace rawlog_ext {

// conn is sconn's struct connection (its streams are conn->input/output);
// sconn is nullptr if conn did not look like one (not to be logged).
using LegConnected = void (*)(struct smtp_client_connection *sconn,
			      struct connection *conn, void *context);

// Calls connected(...) when a connection of client (only conn, if that is
// not null) has connected. False if client's connections cannot be
// watched (then nothing is). May throw: its callers guard it.
bool smtp_leg_watch(struct smtp_client *client,
		    struct smtp_client_connection *conn,
		    LegConnected connected, void *context);
// Stops every watch registered with context.
void smtp_leg_unwatch(void *context);

// Puts log's filters on the connection's streams (they take their own
// references on log).
void smtp_leg_wrap(struct connection *conn, SessionLog *log);

// For a ClientLog on an smtp-server connection (context: the connection):
// after logging moved above what lib-smtp stacked on the input (its own
// rawlog: lmtp_rawlog_dir, rawlog_dir), the command parser must read from
// the top again.
void smtp_parser_follows_input(void *context);

} // namespace rawlog_ext

#endif
