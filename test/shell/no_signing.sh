#!/bin/bash
# The broker plugin can verify tokens but not mint them: no signing code is linked into
# mosquitto_cable.so or mosquitto_cable_gateway.so (cable_jwt_sign and its private-key
# parsing live in the cable_sign library, which only the token tool, the bench and the
# tests link; include/cable_jwt_sign.h). Checked on the built files with nm: none of the
# signing functions is defined, and none of OpenSSL's signing entry points is imported.
set -u
BUILD=${CABLE_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
command -v nm > /dev/null || { echo "no_signing: nm not installed" >&2; exit 77; }

# Our own signing functions (static ones too: the build keeps its symbol table).
ours='^(cable_jwt_sign|jwt_pkey_sign|jwt_header_text|jwt_ecdsa_der_to_raw|jwt_read_private_pem)$'
# OpenSSL's: signing, reading a private key, parsing a DER ECDSA signature (signing only).
theirs='^(EVP_DigestSign|EVP_DigestSignInit|EVP_DigestSignInit_ex|EVP_DigestSignFinal|EVP_PKEY_sign|PEM_read_bio_PrivateKey|d2i_ECDSA_SIG)(@.*)?$'

rc=0
for so in "$BUILD/mosquitto_cable.so" "$BUILD/mosquitto_cable_gateway.so"; do
	[ -f "$so" ] || { echo "no_signing: $so not built" >&2; exit 2; }
	found=$(nm "$so" | awk '{print $NF}' | grep -E "$ours")
	imported=$(nm -D --undefined-only "$so" | awk '{print $NF}' | grep -E "$theirs")
	if [ -n "$found$imported" ]; then
		echo "no_signing: $(basename "$so") carries signing code:" $found $imported >&2
		rc=1
	fi
done
[ $rc -eq 0 ] && echo "no_signing: neither plugin library can sign"
exit $rc
