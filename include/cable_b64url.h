/*
 * base64url (RFC 4648 5) as JWS uses it (RFC 7515 2): the URL-safe alphabet, no padding.
 * Decoding is strict so that every byte string has exactly one accepted spelling (a
 * token cannot be varied without changing its bytes).
 *
 * Pure: no I/O, no globals. Thread: any.
 */
#ifndef CABLE_B64URL_H
#define CABLE_B64URL_H

#include <stddef.h>

#include "cable.h"

/*
 * Strict decoding (RFC 7515 2): the URL-safe alphabet only, no '=' padding, no
 * whitespace, and the unused low bits of the last character must be zero, so that
 * every byte string has exactly one accepted spelling. *out is malloc'd with one
 * spare byte, NUL-terminated. Returns CABLE_OK, CABLE_EAUTH (bad input), CABLE_ENOMEM.
 */
int cable_b64url_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);

/* Length of the encoding of n bytes (no padding). */
size_t cable_b64url_len(size_t n);

/* Writes cable_b64url_len(n) characters to out (no NUL); returns that count. */
size_t cable_b64url_encode(const unsigned char *in, size_t n, char *out);

#endif
