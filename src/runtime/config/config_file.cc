#include "runtime/config/config_file.h"

#include <map>

#include "shared/base/file_system.h"

namespace chiron::runtime {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

bool IsKeyChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

// The rest of a line after the value: blanks, then nothing or a comment.
bool OnlyCommentLeft(std::string_view rest) {
  rest = Trim(rest);
  return rest.empty() || rest.front() == '#';
}

class LineParser {
 public:
  LineParser(const std::string& path, int line) : path_(path), line_(line) {}

  Status Error(const std::string& problem) const {
    return InvalidArgumentError(path_ + ":" + std::to_string(line_) + ": " + problem);
  }

  // `text` is the line without its end. Sets `entry` if the line holds one; `has_entry` false for
  // blank and comment lines.
  Status Parse(std::string_view text, ConfigEntry& entry, bool& has_entry) const {
    has_entry = false;
    if (text.size() > kMaxConfigLineSize) {
      return Error("line longer than " + std::to_string(kMaxConfigLineSize) +
                   " bytes; no setting needs that much: check the file is a chirond config");
    }
    for (char c : text) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        return Error("control character 0x" + Hex(u) +
                     " in the line; a config file is plain text: remove it");
      }
    }
    std::string_view line = Trim(text);
    if (line.empty() || line.front() == '#') return Status::Ok();
    if (line.front() == '[') {
      return Error(
          "sections ('[...]') are not supported: the file is flat 'key = value' lines; remove "
          "the section line");
    }
    size_t equals = line.find('=');
    if (equals == std::string_view::npos) {
      return Error("expected 'key = value', found no '='; comment lines start with '#'");
    }
    std::string_view key = Trim(line.substr(0, equals));
    if (key.empty()) return Error("no key before '='; write 'key = value'");
    for (char c : key) {
      if (!IsKeyChar(c)) {
        return Error("key '" + std::string(key) +
                     "' has a character other than a-z, 0-9 and '-'; keys are chirond's long "
                     "option names without the dashes (e.g. 'state', 'query-budget')");
      }
    }
    if (key.front() < 'a' || key.front() > 'z') {
      return Error("key '" + std::string(key) + "' must start with a letter a-z");
    }
    std::string_view raw = Trim(line.substr(equals + 1));
    std::string value;
    if (!raw.empty() && raw.front() == '"') {
      size_t i = 1;
      bool closed = false;
      while (i < raw.size()) {
        char c = raw[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i >= raw.size() || (raw[i] != '"' && raw[i] != '\\')) {
            return Error("in the quoted value of '" + std::string(key) +
                         "': only \\\" and \\\\ are escapes; write a backslash as \\\\");
          }
          value.push_back(raw[i++]);
          continue;
        }
        value.push_back(c);
      }
      if (!closed) {
        return Error("the quoted value of '" + std::string(key) +
                     "' has no closing '\"' on this line; values cannot span lines");
      }
      if (!OnlyCommentLeft(raw.substr(i))) {
        return Error("text after the closing '\"' of '" + std::string(key) +
                     "'; put everything inside the quotes, or start a comment with '#'");
      }
    } else {
      // An unquoted value ends at a blank followed by '#' (a comment).
      size_t end = raw.size();
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '#') {
          if (i == 0 || IsBlank(raw[i - 1])) {
            end = i;
            break;
          }
          return Error("'#' inside the value of '" + std::string(key) +
                       "': quote the value (\"...\") if the '#' belongs to it, or put a blank "
                       "before a comment");
        }
        if (raw[i] == '"') {
          return Error("'\"' inside the unquoted value of '" + std::string(key) +
                       "': quote the whole value and escape the quote as \\\"");
        }
      }
      value = std::string(Trim(raw.substr(0, end)));
      if (value.empty()) {
        return Error("'" + std::string(key) +
                     "' has no value; remove the line to keep the default, or write " +
                     std::string(key) + " = \"\" for an empty value");
      }
    }
    entry.key = std::string(key);
    entry.value = std::move(value);
    entry.line = line_;
    has_entry = true;
    return Status::Ok();
  }

 private:
  static std::string Hex(unsigned char u) {
    static constexpr char kDigits[] = "0123456789abcdef";
    return {kDigits[u >> 4], kDigits[u & 15]};
  }

  const std::string& path_;
  int line_;
};

}  // namespace

Result<std::vector<ConfigEntry>> ParseConfigText(std::string_view text, const std::string& path) {
  if (text.size() > kMaxConfigFileSize) {
    return InvalidArgumentError(path + ": " + std::to_string(text.size()) +
                                " bytes, more than a config file may have (" +
                                std::to_string(kMaxConfigFileSize) +
                                "); check that it is a chirond config");
  }
  std::vector<ConfigEntry> entries;
  std::map<std::string, int, std::less<>> seen;  // key -> line
  int line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    ++line_number;
    size_t end = text.find('\n', start);
    std::string_view line =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    start = end == std::string_view::npos ? text.size() : end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    LineParser parser(path, line_number);
    ConfigEntry entry;
    bool has_entry = false;
    if (Status status = parser.Parse(line, entry, has_entry); !status.ok()) return status;
    if (!has_entry) continue;
    if (auto it = seen.find(entry.key); it != seen.end()) {
      return parser.Error("'" + entry.key + "' is already set on line " +
                          std::to_string(it->second) + "; keep one of the two lines");
    }
    seen.emplace(entry.key, line_number);
    entries.push_back(std::move(entry));
  }
  return entries;
}

Result<std::vector<ConfigEntry>> ReadConfigFile(const std::string& path) {
  auto bytes = FileSystem::Default()->ReadFile(path, kMaxConfigFileSize);
  if (!bytes.ok()) {
    return Status(bytes.status().code(), "cannot read the config file: " +
                                             bytes.status().message() +
                                             "; check the path given to --config");
  }
  return ParseConfigText(
      std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()), path);
}

std::string QuoteConfigValue(std::string_view value) {
  bool bare = !value.empty() && !IsBlank(value.front()) && !IsBlank(value.back()) &&
              value.front() != '"';
  for (char c : value) {
    if (c == '#' || c == '"' || c == '\t') bare = false;
  }
  if (bare) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace chiron::runtime
