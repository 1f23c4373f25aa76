#include "runtime/config/config_file.h"

#include <gtest/gtest.h>

#include <string>

namespace chiron::runtime {
namespace {

std::vector<ConfigEntry> ParseOk(std::string_view text) {
  auto entries = ParseConfigText(text, "t.conf");
  EXPECT_TRUE(entries.ok()) << entries.status().message();
  return entries.ok() ? *entries : std::vector<ConfigEntry>{};
}

// The error message for `text`, which must be refused.
std::string ParseError(std::string_view text) {
  auto entries = ParseConfigText(text, "t.conf");
  EXPECT_FALSE(entries.ok()) << "accepted: " << text;
  if (entries.ok()) return "";
  EXPECT_EQ(entries.status().code(), StatusCode::kInvalidArgument);
  return entries.status().message();
}

TEST(ConfigFileTest, KeysValuesCommentsAndLineNumbers) {
  auto entries = ParseOk(
      "# comment\n"
      "\n"
      "platform = sim\n"
      "  listen=127.0.0.1:7443   # trailing comment\n"
      "state =\t/var/lib/chiron\r\n"
      "\t# indented comment\n"
      "recipes-dir = \"/opt/with # hash \\\"and\\\" quotes \\\\ \"  # comment\n"
      "port-file = \"\"\n"
      "tsm-root = /a/b\\c");
  ASSERT_EQ(entries.size(), 6u);
  EXPECT_EQ(entries[0].key, "platform");
  EXPECT_EQ(entries[0].value, "sim");
  EXPECT_EQ(entries[0].line, 3);
  EXPECT_EQ(entries[1].key, "listen");
  EXPECT_EQ(entries[1].value, "127.0.0.1:7443");
  EXPECT_EQ(entries[1].line, 4);
  EXPECT_EQ(entries[2].value, "/var/lib/chiron");  // tab and CRLF tolerated
  EXPECT_EQ(entries[3].key, "recipes-dir");
  EXPECT_EQ(entries[3].value, "/opt/with # hash \"and\" quotes \\ ");
  EXPECT_EQ(entries[3].line, 7);
  EXPECT_EQ(entries[4].value, "");
  EXPECT_EQ(entries[5].value, "/a/b\\c") << "a backslash is itself outside quotes";
  EXPECT_TRUE(ParseOk("").empty());
  EXPECT_TRUE(ParseOk("# only a comment").empty());
}

TEST(ConfigFileTest, EveryBrokenRuleNamesFileLineAndWhatToDo) {
  struct Case {
    std::string text;
    std::string expected;  // part of the message after "t.conf:LINE: "
    int line;
  };
  const Case cases[] = {
      {"a = 1\nlisten\n", "expected 'key = value', found no '='", 2},
      {"= 1\n", "no key before '='", 1},
      {"Listen = x\n", "other than a-z, 0-9 and '-'", 1},
      {"query_budget = 5\n", "other than a-z, 0-9 and '-'", 1},
      {"9lives = 1\n", "must start with a letter", 1},
      {"\n\nstate =\n", "'state' has no value; remove the line to keep the default", 3},
      {"state =   # nothing\n", "'state' has no value", 1},
      {"[chirond]\n", "sections ('[...]') are not supported", 1},
      {"state = \"/x\n", "no closing '\"' on this line", 1},
      {"state = \"/x\" y\n", "text after the closing '\"'", 1},
      {"state = \"a\\nb\"\n", "only \\\" and \\\\ are escapes", 1},
      {"state = a\"b\n", "quote the whole value", 1},
      {"state = a #b\nlisten = \"x#y\" #w\n", "", 0},  // valid: checked below
      {"listen = x#y z\n", "'#' inside the value of 'listen': quote the value", 1},
      {"a = 1\nb = 2\na = 3\n", "'a' is already set on line 1; keep one of the two lines", 3},
      {"a = 1\nb = x\x01y\n", "control character 0x01", 2},
      {std::string("a = x") + '\0' + "\n", "control character 0x00", 1},
      {"a = " + std::string(kMaxConfigLineSize, 'x') + "\n", "line longer than", 1},
  };
  for (const Case& c : cases) {
    if (c.line == 0) {
      auto entries = ParseOk(c.text);
      ASSERT_EQ(entries.size(), 2u);
      EXPECT_EQ(entries[0].value, "a");
      EXPECT_EQ(entries[1].value, "x#y");
      continue;
    }
    std::string message = ParseError(c.text);
    EXPECT_EQ(message.rfind("t.conf:" + std::to_string(c.line) + ": ", 0), 0u)
        << c.text << " -> " << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.text << " -> " << message;
  }
}

TEST(ConfigFileTest, OversizedFileIsRefusedUnparsed) {
  std::string text;
  while (text.size() <= kMaxConfigFileSize) text += "# padding padding padding padding\n";
  EXPECT_NE(ParseError(text).find("more than a config file may have"), std::string::npos);
}

TEST(ConfigFileTest, QuotedValuesReadBackUnchanged) {
  const std::string values[] = {"plain", "",          " lead", "trail ", "a # b", "#x",
                                "q\"uote", "back\\slash", "\"", "tab\tin", "a=b", "ü"};
  for (const auto& value : values) {
    auto entries = ParseOk("k = " + QuoteConfigValue(value) + "  # c\n");
    ASSERT_EQ(entries.size(), 1u) << value;
    EXPECT_EQ(entries[0].value, value);
  }
  EXPECT_EQ(QuoteConfigValue("/var/lib/chiron"), "/var/lib/chiron");
  EXPECT_EQ(QuoteConfigValue(""), "\"\"");
}

TEST(ConfigFileTest, ReadConfigFileNamesAMissingFile) {
  auto entries = ReadConfigFile("/nonexistent/chirond.conf");
  ASSERT_FALSE(entries.ok());
  EXPECT_NE(entries.status().message().find("/nonexistent/chirond.conf"), std::string::npos)
      << entries.status().message();
  EXPECT_NE(entries.status().message().find("--config"), std::string::npos);
}

}  // namespace
}  // namespace chiron::runtime
