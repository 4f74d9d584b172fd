// The one place Dovecot's C headers enter C++.
//
// Include this first in every Dovecot-facing translation unit, then the
// protocol's own headers through DOVECOT_EXTERN_C_BEGIN/END.
#ifndef RAWLOG_EXT_COMPAT_HH
#define RAWLOG_EXT_COMPAT_HH

#define DOVECOT_EXTERN_C_BEGIN extern "C" {
#define DOVECOT_EXTERN_C_END }

extern "C" {
#include "lib.h"
#include "array.h"
#include "str.h"
#include "ioloop.h"
#include "hostpid.h"
#include "net.h"
#include "module-context.h"
#include "istream.h"
#include "ostream.h"
#include "istream-private.h"
#include "ostream-private.h"
#include "mail-user.h"
}

#include <type_traits>

namespace rawlog_ext {

// MODULE_CONTEXT() yields void * in C++: give it back its type.
template <typename T, typename Obj, typename IdCtx>
inline T *module_context(Obj *obj, IdCtx &id_ctx)
{
	return static_cast<T *>(MODULE_CONTEXT(obj, id_ctx));
}

// Dovecot flag enums are combined with |, which yields int in C++.
template <typename E>
inline E enum_or(E a, E b)
{
	using U = std::underlying_type_t<E>;
	return static_cast<E>(static_cast<U>(a) | static_cast<U>(b));
}

} // namespace rawlog_ext

#endif
