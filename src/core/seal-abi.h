/* The seal module's entry point (rawlog_ext_seal.so, the only part of
   rawlog_ext on libcrypto). Plain C types only: the module and the
   plugins each carry their own (static, hidden) C++ runtime. */
#ifndef RAWLOG_EXT_SEAL_ABI_H
#define RAWLOG_EXT_SEAL_ABI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RAWLOG_EXT_SEAL_ABI_VERSION 1
#define RAWLOG_EXT_SEAL_ENTRY "rawlog_ext_seal_abi_v1"

/* Receives sealed bytes to write to the file, in order. */
typedef void rawlog_ext_seal_output(void *context, const void *data,
				    size_t size);

struct rawlog_ext_seal_abi {
	unsigned int version;
	/* Initialises OpenSSL (its config, the DRBG): a login process calls
	   it before its chroot, where OpenSSL's files are out of reach.
	   0 ok, -1 failed (error filled). */
	int (*prepare)(char *error, size_t error_size);
	/* A writer for one file; its header goes to output at once. NULL
	   with error filled on failure. recipients: count X25519 keys. */
	void *(*begin)(const unsigned char (*recipients)[32], size_t count,
		       rawlog_ext_seal_output *output, void *context,
		       char *error, size_t error_size);
	/* 0 ok, -1 failed (error filled; the writer is then unusable). */
	int (*write)(void *writer, const void *data, size_t size,
		     rawlog_ext_seal_output *output, void *context,
		     char *error, size_t error_size);
	/* Seals the last chunk. */
	int (*finish)(void *writer, rawlog_ext_seal_output *output,
		      void *context, char *error, size_t error_size);
	/* Wipes what the writer holds (key, open tail) and frees it. */
	void (*free)(void *writer);
};

typedef const struct rawlog_ext_seal_abi *rawlog_ext_seal_entry(void);

#ifdef __cplusplus
}
#endif

#endif
