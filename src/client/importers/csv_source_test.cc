#include "client/importers/csv_source.h"

#include <gtest/gtest.h>

#include <cstring>

#include "client/importers/test_files.h"

namespace chiron::importers {
namespace {

using testing::PullAll;
using testing::TempDir;

std::vector<float> Floats(const Bytes& sample) {
  std::vector<float> out(sample.size() / 4);
  for (size_t i = 0; i < out.size(); ++i) {
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) bits |= uint32_t{sample[4 * i + b]} << (8 * b);
    std::memcpy(&out[i], &bits, 4);
  }
  return out;
}

class CsvTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<SampleSource>> Open(std::string_view text,
                                             std::vector<std::string> classes = {},
                                             std::string label_column = "label") {
    return OpenCsvFile(dir_.Write("data.csv", text), label_column, std::move(classes));
  }
  // Opens and pulls; returns the first error.
  Status OpenAndPull(std::string_view text, std::vector<std::string> classes = {}) {
    auto source = Open(text, std::move(classes));
    if (!source.ok()) return source.status();
    return PullAll(**source).error;
  }
  std::string Path() const { return dir_.path() + "/data.csv"; }

  TempDir dir_;
};

TEST_F(CsvTest, ReadsFeaturesAndLabelsInFirstAppearanceOrder) {
  auto source = OpenCsvFile(dir_.Write("iris.csv",
                                       "sepal_length, sepal_width,species,petal\r\n"
                                       "5.1,3.5,setosa,1.4\r\n"
                                       "\r\n"
                                       " 7.0 , -3.2e1 ,\"versi,color\", +0.5\n"
                                       "6.3,3.3,setosa,6\n"),
                            "species", {});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  const dataset::DatasetSchema& schema = (*source)->schema();
  EXPECT_EQ(schema.element_type, dataset::ElementType::kFloat32);
  EXPECT_EQ(schema.shape, (std::vector<uint32_t>{3}));
  EXPECT_EQ(schema.class_names, (std::vector<std::string>{"setosa", "versi,color"}));
  EXPECT_EQ(schema.sample_count, 3u);
  testing::Pulled pulled = PullAll(**source);
  ASSERT_TRUE(pulled.error.ok()) << pulled.error.ToString();
  ASSERT_EQ(pulled.samples.size(), 3u);
  EXPECT_EQ(Floats(pulled.samples[0]), (std::vector<float>{5.1f, 3.5f, 1.4f}));
  EXPECT_EQ(Floats(pulled.samples[1]), (std::vector<float>{7.0f, -32.0f, 0.5f}));
  EXPECT_EQ(Floats(pulled.samples[2]), (std::vector<float>{6.3f, 3.3f, 6.0f}));
  EXPECT_EQ(pulled.labels, (std::vector<uint32_t>{0, 1, 0}));
}

TEST_F(CsvTest, ForPredictionTheLabelColumnIsOptional) {
  bool has_labels = true;
  auto plain = OpenCsvForPrediction(dir_.Write("plain.csv", "a,b\n1,2\n3,4\n"), "species",
                                    {"setosa", "virginica"}, &has_labels);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_FALSE(has_labels);
  EXPECT_EQ((*plain)->schema().shape, (std::vector<uint32_t>{2}));
  testing::Pulled pulled = PullAll(**plain);
  ASSERT_TRUE(pulled.error.ok()) << pulled.error.ToString();
  ASSERT_EQ(pulled.samples.size(), 2u);
  EXPECT_EQ(Floats(pulled.samples[1]), (std::vector<float>{3.0f, 4.0f}));

  auto labelled = OpenCsvForPrediction(
      dir_.Write("labelled.csv", "a,species,b\n1,virginica,2\n3,setosa,4\n"), "species",
      {"setosa", "virginica"}, &has_labels);
  ASSERT_TRUE(labelled.ok()) << labelled.status().ToString();
  EXPECT_TRUE(has_labels);
  pulled = PullAll(**labelled);
  ASSERT_TRUE(pulled.error.ok());
  EXPECT_EQ(Floats(pulled.samples[0]), (std::vector<float>{1.0f, 2.0f})) << "label not a feature";
  EXPECT_EQ(pulled.labels, (std::vector<uint32_t>{1, 0}));

  // A label the model does not know, and a bad number: file, line and column named.
  auto unknown = OpenCsvForPrediction(dir_.Write("unknown.csv", "a,species\n1,rose\n"),
                                      "species", {"setosa"}, &has_labels);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown.csv:2:2"), std::string::npos)
      << unknown.status().message();
  auto bad = OpenCsvForPrediction(dir_.Write("bad.csv", "a,b\n1,2\n1,two\n"), "species",
                                  {"setosa"}, &has_labels);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.csv:3:2"), std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(OpenCsvForPrediction(Path(), "species", {}, &has_labels).ok())
      << "the model's classes are required";
}

TEST_F(CsvTest, GivenClassListFixesTheOrder) {
  auto source = Open("x,label\n1,b\n2,a\n3,b\n", {"a", "b", "c"});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ((*source)->schema().class_names, (std::vector<std::string>{"a", "b", "c"}));
  testing::Pulled pulled = PullAll(**source);
  EXPECT_TRUE(pulled.error.ok());
  EXPECT_EQ(pulled.labels, (std::vector<uint32_t>{1, 0, 1}));
  Status status = OpenAndPull("x,label\n1,b\n2,z\n", {"a", "b"});
  EXPECT_NE(status.message().find(Path() + ":3:2 (column 'label'): label 'z' is not in the "
                                           "given class list"),
            std::string::npos)
      << status.ToString();
}

TEST_F(CsvTest, GzipCsvIsRead) {
  Bytes gz = testing::Gzip(AsBytes("a,label\n1,x\n2,y\n"));
  auto source = OpenCsvFile(dir_.Write("data.csv.gz", gz), "label", {});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ((*source)->schema().sample_count, 2u);
}

void ExpectError(const Status& status, const std::string& needle) {
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_NE(status.message().find(needle), std::string::npos) << status.ToString();
}

TEST_F(CsvTest, NonNumericFeature) {
  ExpectError(OpenAndPull("a,b,label\n1,2,x\n3,abc,y\n"),
              Path() + ":3:2 (column 'b'): 'abc' is not a number");
  ExpectError(OpenAndPull("a,b,label\n1,2x,x\n"),
              Path() + ":2:2 (column 'b'): '2x' is not a number");
  ExpectError(OpenAndPull("a,label\nnan,x\n"), "'nan' is not a finite number");
  ExpectError(OpenAndPull("a,label\ninf,x\n"), "'inf' is not a finite number");
  ExpectError(OpenAndPull("a,label\n1e999,x\n"), "out of float32 range");
  ExpectError(OpenAndPull("a,label\n,x\n"), Path() + ":2:1 (column 'a'): empty value");
  ExpectError(OpenAndPull("a,label\n1,\n"), Path() + ":2:2 (column 'label'): empty label");
}

TEST_F(CsvTest, MissingLabelColumn) {
  ExpectError(OpenAndPull("a,b,class\n1,2,x\n"),
              Path() + ":1: no column named 'label' in the header (columns: 'a', 'b', 'class')");
  ExpectError(OpenAndPull("label,a,label\n1,2,3\n"), "appears twice");
  ExpectError(OpenAndPull("label\nx\n"), "needs at least one feature column");
}

TEST_F(CsvTest, RaggedRows) {
  ExpectError(OpenAndPull("a,b,label\n1,2,x\n1,x\n"),
              Path() + ":3: row has 2 fields but the header has 3");
  ExpectError(OpenAndPull("a,b,label\n1,2,x,4\n"), Path() + ":2: row has 4 fields");
  ExpectError(OpenAndPull("a,b,label\n1,2,x,\n"), Path() + ":2: row has 4 fields");
}

TEST_F(CsvTest, QuotingErrors) {
  ExpectError(OpenAndPull("a,label\n1,\"x\n"), Path() + ":2:2: unterminated quoted field");
  ExpectError(OpenAndPull("a,label\n1,\"x\"y\n"), "unexpected character after a closing quote");
  ExpectError(OpenAndPull("a,label\n1,x\"y\n"), "stray quote");
  auto source = Open("a,label\n1,\"say \"\"hi\"\"\"\n");
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ((*source)->schema().class_names, (std::vector<std::string>{"say \"hi\""}));
}

TEST_F(CsvTest, EmptyInputs) {
  ExpectError(OpenAndPull(""), "the file is empty");
  ExpectError(OpenAndPull("\n\n"), "the file is empty");
  ExpectError(OpenAndPull("a,label\n\n"), "not followed by any data rows");
}

TEST_F(CsvTest, HostileLabelsAndLines) {
  ExpectError(OpenAndPull("a,label\n1,x\x1b[2J\n"), "control character");
  ExpectError(OpenAndPull("a,label\n1," + std::string(300, 'y') + "\n"), "longer than 255 bytes");
  ExpectError(OpenAndPull("a,label\n1," + std::string(kMaxCsvLineSize + 10, '9') + "\n"),
              Path() + ":2: line is longer than");
}

TEST_F(CsvTest, FileChangedBetweenPasses) {
  auto source = Open("a,label\n1,x\n2,y\n");
  ASSERT_TRUE(source.ok());
  dir_.Write("data.csv", "a,label\n1,x\n2,y\n3,x\n");
  ExpectError(PullAll(**source).error, "changed during the import");
}

}  // namespace
}  // namespace chiron::importers
