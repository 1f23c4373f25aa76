// The chirond configuration file format: flat `key = value` lines (docs/operations.md).
//
//   # a comment: a line whose first non-blank character is '#'
//   listen = 127.0.0.1:7443          # a comment after a value (a blank, then '#')
//   state = /var/lib/chiron
//   recipes-dir = "/opt/chiron/recipes #2"   # quotes keep '#', leading or trailing blanks
//
// Rules (each broken rule is an error naming the file, the line and what to do):
// - UTF-8 text without NUL or other control characters except tab; lines end in LF (a CR
//   before the LF is tolerated); at most kMaxConfigFileSize bytes and kMaxConfigLineSize bytes
//   per line.
// - A key is lower-case letters, digits and '-', starting with a letter (the long option names
//   of `chirond --help` without the dashes). Each key at most once.
// - A value is the rest of the line after '=', without surrounding blanks and without a trailing
//   comment; it may not be empty and may not contain '"' unless the whole value is quoted. A
//   quoted value is "..." on one line with the escapes \" and \\ only.
// - No sections ("[name]"), no continuation lines, no includes.
//
// The parser knows nothing about which keys exist or what their values mean: chirond_settings.h
// applies the entries to chirond's options. The file comes from the operator (trusted, but
// typed by hand); the parser is fuzzed anyway (fuzz/fuzz_chirond_config.cc).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "shared/base/status.h"

namespace chiron::runtime {

inline constexpr size_t kMaxConfigFileSize = 64 * 1024;
inline constexpr size_t kMaxConfigLineSize = 4096;

struct ConfigEntry {
  std::string key;
  std::string value;  // unquoted, escapes resolved
  int line = 0;       // 1-based
};

// Parses `text`; `path` only names the file in messages ("PATH:LINE: ..."). Entries in file
// order. InvalidArgument on the first broken rule.
Result<std::vector<ConfigEntry>> ParseConfigText(std::string_view text, const std::string& path);

// Reads `path` (at most kMaxConfigFileSize bytes) and parses it. NotFound / PermissionDenied-like
// errors name the file; syntax errors as ParseConfigText.
Result<std::vector<ConfigEntry>> ReadConfigFile(const std::string& path);

// `value` written so that ParseConfigText reads it back unchanged: bare if it is safe, quoted
// with escapes otherwise (empty, blanks at either end, '#', '"', '\').
std::string QuoteConfigValue(std::string_view value);

}  // namespace chiron::runtime
