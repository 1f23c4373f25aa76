#include "shared/attest/tdx/strict_pem.h"

#include <string>
#include <string_view>

namespace chiron::attest {
namespace {

int Base64Value(uint8_t c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict base64 of the concatenated body lines: length a multiple of 4, '=' only as final
// padding, unused padding bits zero (so exactly one text encodes each DER).
Result<Bytes> DecodeStrictBase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) {
    return InvalidArgumentError("base64 length " + std::to_string(text.size()) +
                                " is not a positive multiple of 4");
  }
  size_t padding = 0;
  if (text.back() == '=') padding = (text[text.size() - 2] == '=') ? 2 : 1;
  Bytes out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t group = 0;
    bool last = i + 4 == text.size();
    for (size_t j = 0; j < 4; ++j) {
      uint8_t c = static_cast<uint8_t>(text[i + j]);
      int value = 0;
      if (last && j >= 4 - padding) {
        if (c != '=') return InvalidArgumentError("bad base64 padding");
      } else {
        value = Base64Value(c);
        if (value < 0) {
          return InvalidArgumentError("non-base64 character at offset " + std::to_string(i + j));
        }
      }
      group = group << 6 | static_cast<uint32_t>(value);
    }
    out.push_back(static_cast<uint8_t>(group >> 16));
    if (!last || padding < 2) out.push_back(static_cast<uint8_t>(group >> 8));
    if (!last || padding < 1) out.push_back(static_cast<uint8_t>(group));
    if (last && padding == 1 && (group & 0xff) != 0) {
      return InvalidArgumentError("base64 padding bits are not zero");
    }
    if (last && padding == 2 && (group & 0xffff) != 0) {
      return InvalidArgumentError("base64 padding bits are not zero");
    }
  }
  return out;
}

constexpr std::string_view kPemBegin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kPemEnd = "-----END CERTIFICATE-----";
constexpr size_t kMaxPemCertificates = 8;

}  // namespace

Result<std::vector<Bytes>> DecodeStrictPemCertificates(ByteSpan pem_bytes) {
  std::string_view pem(reinterpret_cast<const char*>(pem_bytes.data()), pem_bytes.size());
  if (!pem.empty() && pem.back() == '\0') pem.remove_suffix(1);
  // Split into lines; every line, including the last, must end in "\n" (or "\r\n").
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < pem.size()) {
    size_t newline = pem.find('\n', start);
    if (newline == std::string_view::npos) {
      return InvalidArgumentError("PEM text does not end with a newline");
    }
    std::string_view line = pem.substr(start, newline - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = newline + 1;
  }
  std::vector<Bytes> certificates;
  size_t i = 0;
  while (i < lines.size()) {
    if (lines[i] != kPemBegin) {
      return InvalidArgumentError("PEM line " + std::to_string(i + 1) + " is not \"" +
                                  std::string(kPemBegin) + "\"");
    }
    if (certificates.size() == kMaxPemCertificates) {
      return InvalidArgumentError("more than " + std::to_string(kMaxPemCertificates) +
                                  " certificates in the PEM chain");
    }
    std::string base64;
    size_t j = i + 1;
    for (; j < lines.size() && lines[j] != kPemEnd; ++j) {
      if (lines[j].empty() || lines[j].size() > 76) {
        return InvalidArgumentError("PEM line " + std::to_string(j + 1) +
                                    " has a bad length for base64 text");
      }
      base64.append(lines[j]);
    }
    if (j == lines.size()) {
      return InvalidArgumentError("PEM certificate " + std::to_string(certificates.size() + 1) +
                                  " has no END line");
    }
    Result<Bytes> der = DecodeStrictBase64(base64);
    if (!der.ok()) {
      return InvalidArgumentError("PEM certificate " + std::to_string(certificates.size() + 1) +
                                  ": " + der.status().message());
    }
    certificates.push_back(std::move(der).value());
    i = j + 1;
  }
  if (certificates.empty()) return InvalidArgumentError("PEM text holds no certificate");
  return certificates;
}

}  // namespace chiron::attest
