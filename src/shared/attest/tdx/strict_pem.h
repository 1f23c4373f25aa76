// Strict PEM decoding of certificate chains, shared by the TDX and SEV-SNP verifiers (library
// chiron_attest_pem). OpenSSL's PEM reader tolerates stray text, so a changed byte in a quote's
// PEM chain could go unnoticed; this decoder gives every byte of the text a meaning.
#pragma once

#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::attest {

// Decodes a PEM text holding one or more "CERTIFICATE" blocks into DER, in order. Strict, so that
// every byte of the text is meaningful: lines end in "\n" (a "\r\n" is accepted), base64 lines
// hold only base64 characters, padding bits must be zero, nothing but blank lines between
// blocks, and at most one NUL terminator at the very end. InvalidArgument otherwise.
Result<std::vector<Bytes>> DecodeStrictPemCertificates(ByteSpan pem);

}  // namespace chiron::attest
