/*
 * base64url for JWS: strict decoding, unpadded encoding. Pure; see cable_b64url.h.
 */
#include <stdint.h>
#include <stdlib.h>

#include "cable_b64url.h"

/* ---- base64url ----------------------------------------------------------------------- */
static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict decoding (RFC 7515 2): the URL-safe alphabet only, no '=' padding, no
 * whitespace, and the unused low bits of the last character must be zero, so that
 * every byte string has exactly one accepted spelling. *out is malloc'd with one
 * spare byte, NUL-terminated. Returns CABLE_OK, CABLE_EAUTH (bad input), CABLE_ENOMEM.
 */
int cable_b64url_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
	unsigned char *buf;
	uint32_t acc = 0;
	size_t i, n = 0;
	int v, bits = 0;

	if (len % 4 == 1)
		return CABLE_EAUTH;
	buf = malloc(len / 4 * 3 + 3);
	if (buf == NULL)
		return CABLE_ENOMEM;
	for (i = 0; i < len; i++) {
		v = b64url_value((unsigned char)in[i]);
		if (v < 0)
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* leftover bits (2 or 4) must be zero */
		goto bad;
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return CABLE_OK;
bad:
	free(buf);
	return CABLE_EAUTH;
}

size_t cable_b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Writes cable_b64url_len(n) characters to out (no NUL); returns that count. */
size_t cable_b64url_encode(const unsigned char *in, size_t n, char *out)
{
	static const char abc[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t acc = 0;
	size_t i, o = 0;
	int bits = 0;

	for (i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = abc[(acc >> bits) & 63];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		out[o++] = abc[(acc << (6 - bits)) & 63];
	return o;
}
