#include "shared/dataset/schema.h"

#include <gtest/gtest.h>

namespace chiron::dataset {
namespace {

DatasetSchema FashionSchema() {
  DatasetSchema schema;
  schema.element_type = ElementType::kUint8;
  schema.shape = {28, 28};
  schema.label_type = LabelType::kUint8;
  schema.class_names = {"T-shirt/top", "Trouser", "Pullover"};
  schema.sample_count = 60000;
  return schema;
}

TEST(SchemaTest, SizesAndDescription) {
  DatasetSchema schema = FashionSchema();
  ASSERT_TRUE(schema.Validate().ok());
  EXPECT_EQ(schema.element_count(), 784u);
  EXPECT_EQ(schema.sample_size(), 784u);
  EXPECT_EQ(schema.record_size(), 785u);
  EXPECT_EQ(schema.Describe(), "28x28 uint8, 3 classes (u8 labels), 60000 samples");
  schema.element_type = ElementType::kFloat32;
  schema.label_type = LabelType::kUint16;
  EXPECT_EQ(schema.sample_size(), 784u * 4);
  EXPECT_EQ(schema.record_size(), 784u * 4 + 2);
}

TEST(SchemaTest, EncodingIsCanonicalAndRoundTrips) {
  DatasetSchema schema = FashionSchema();
  Bytes encoded;
  EncodeSchema(schema, encoded);
  ByteReader reader(encoded);
  auto parsed = ParseSchema(reader);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(reader.empty());
  EXPECT_EQ(*parsed, schema);
  Bytes again;
  EncodeSchema(*parsed, again);
  EXPECT_EQ(again, encoded);
}

TEST(SchemaTest, LabelTypeFor) {
  EXPECT_EQ(LabelTypeFor(2), LabelType::kUint8);
  EXPECT_EQ(LabelTypeFor(256), LabelType::kUint8);
  EXPECT_EQ(LabelTypeFor(257), LabelType::kUint16);
}

void ExpectInvalid(const DatasetSchema& schema, std::string_view needle) {
  Status status = schema.Validate();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find(needle), std::string::npos) << status.message();
}

TEST(SchemaTest, ValidateRejectsEachBrokenRule) {
  DatasetSchema schema = FashionSchema();
  schema.shape = {};
  ExpectInvalid(schema, "1 to 4 dimensions");
  schema = FashionSchema();
  schema.shape = {1, 2, 3, 4, 5};
  ExpectInvalid(schema, "1 to 4 dimensions");
  schema = FashionSchema();
  schema.shape = {28, 0};
  ExpectInvalid(schema, "dimension 1 is 0");
  schema = FashionSchema();
  schema.shape = {4096, 4096, 2};
  ExpectInvalid(schema, "exceed the limit");
  schema = FashionSchema();
  schema.shape = {0xffffffffu, 0xffffffffu};  // would overflow a naive product
  ExpectInvalid(schema, "exceed the limit");
  schema = FashionSchema();
  schema.class_names = {};
  ExpectInvalid(schema, "at least 1 class");
  schema = FashionSchema();
  schema.class_names = {"a", "b", "a"};
  ExpectInvalid(schema, "appears twice");
  schema = FashionSchema();
  schema.class_names = {"a", "b\x1b[2J"};
  ExpectInvalid(schema, "control character");
  schema = FashionSchema();
  schema.class_names = {"a", ""};
  ExpectInvalid(schema, "class 1 has a name of 0 bytes");
  schema = FashionSchema();
  schema.class_names.clear();
  for (int i = 0; i < 300; ++i) schema.class_names.push_back("c" + std::to_string(i));
  ExpectInvalid(schema, "do not fit u8 labels");
  schema.label_type = LabelType::kUint16;
  EXPECT_TRUE(schema.Validate().ok());
  schema = FashionSchema();
  schema.sample_count = 0;
  ExpectInvalid(schema, "no samples");
  schema.sample_count = kMaxSampleCount + 1;
  ExpectInvalid(schema, "exceed the limit");
}

TEST(SchemaTest, ParseRejectsTruncationAndHugeClassCounts) {
  Bytes encoded;
  EncodeSchema(FashionSchema(), encoded);
  for (size_t size = 0; size < encoded.size(); ++size) {
    ByteReader reader(ByteSpan(encoded).first(size));
    EXPECT_FALSE(ParseSchema(reader).ok()) << "prefix of " << size << " bytes parsed";
  }
  // Rank 9.
  Bytes bad = {1, 9};
  ByteReader rank_reader(bad);
  EXPECT_NE(ParseSchema(rank_reader).status().message().find("rank 9"), std::string::npos);
  // A class count of 65536 with no room for the names is rejected before any allocation.
  bad = {1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0};
  ByteReader count_reader(bad);
  EXPECT_NE(ParseSchema(count_reader).status().message().find("remaining header"),
            std::string::npos);
}

}  // namespace
}  // namespace chiron::dataset
