#include "shared/dataset/schema.h"

#include <set>
#include <string>

namespace chiron::dataset {

std::string_view ElementTypeName(ElementType type) {
  switch (type) {
    case ElementType::kUint8: return "uint8";
    case ElementType::kFloat32: return "float32";
  }
  return "unknown";
}

size_t ElementSize(ElementType type) {
  return type == ElementType::kFloat32 ? 4 : 1;
}

std::string_view LabelTypeName(LabelType type) {
  switch (type) {
    case LabelType::kUint8: return "u8";
    case LabelType::kUint16: return "u16";
  }
  return "unknown";
}

size_t LabelSize(LabelType type) {
  return type == LabelType::kUint16 ? 2 : 1;
}

LabelType LabelTypeFor(size_t class_count) {
  return class_count <= 256 ? LabelType::kUint8 : LabelType::kUint16;
}

uint64_t DatasetSchema::element_count() const {
  uint64_t count = 1;
  for (uint32_t dim : shape) count *= dim;
  return count;
}

std::string DatasetSchema::Describe() const {
  std::string out;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += "x";
    out += std::to_string(shape[i]);
  }
  out += " " + std::string(ElementTypeName(element_type)) + ", " + std::to_string(class_count()) +
         " classes (" + std::string(LabelTypeName(label_type)) + " labels), " +
         std::to_string(sample_count) + " samples";
  return out;
}

Status DatasetSchema::Validate() const {
  if (element_type != ElementType::kUint8 && element_type != ElementType::kFloat32) {
    return InvalidArgumentError("schema: unknown element type " +
                                std::to_string(static_cast<int>(element_type)));
  }
  if (shape.empty() || shape.size() > kMaxRank) {
    return InvalidArgumentError("schema: a sample must have 1 to " + std::to_string(kMaxRank) +
                                " dimensions, not " + std::to_string(shape.size()));
  }
  // Multiply with an overflow guard: each dimension is checked against the limit as we go.
  uint64_t size = ElementSize(element_type);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) {
      return InvalidArgumentError("schema: dimension " + std::to_string(i) + " is 0");
    }
    size *= shape[i];  // size <= 16 MiB and shape[i] < 2^32, so this cannot overflow
    if (size > kMaxSampleSize) {
      return InvalidArgumentError("schema: one sample would exceed the limit of " +
                                  std::to_string(kMaxSampleSize) + " bytes");
    }
  }
  if (label_type != LabelType::kUint8 && label_type != LabelType::kUint16) {
    return InvalidArgumentError("schema: unknown label type " +
                                std::to_string(static_cast<int>(label_type)));
  }
  if (class_names.empty()) return InvalidArgumentError("schema: there must be at least 1 class");
  if (class_names.size() > kMaxClasses) {
    return InvalidArgumentError("schema: " + std::to_string(class_names.size()) +
                                " classes exceed the limit of " + std::to_string(kMaxClasses));
  }
  if (label_type == LabelType::kUint8 && class_names.size() > 256) {
    return InvalidArgumentError("schema: " + std::to_string(class_names.size()) +
                                " classes do not fit u8 labels; use u16 labels");
  }
  std::set<std::string_view> seen;
  for (size_t i = 0; i < class_names.size(); ++i) {
    const std::string& name = class_names[i];
    if (name.empty() || name.size() > kMaxClassNameSize) {
      return InvalidArgumentError("schema: class " + std::to_string(i) + " has a name of " +
                                  std::to_string(name.size()) + " bytes; names need 1 to " +
                                  std::to_string(kMaxClassNameSize));
    }
    for (unsigned char c : name) {
      // Control characters would let a dataset rewrite the owner's terminal when names are shown.
      if (c < 0x20 || c == 0x7f) {
        return InvalidArgumentError("schema: class " + std::to_string(i) +
                                    " name contains a control character");
      }
    }
    if (!seen.insert(name).second) {
      return InvalidArgumentError("schema: class name '" + name + "' appears twice");
    }
  }
  if (sample_count == 0) return InvalidArgumentError("schema: the dataset has no samples");
  if (sample_count > kMaxSampleCount) {
    return InvalidArgumentError("schema: " + std::to_string(sample_count) +
                                " samples exceed the limit of " + std::to_string(kMaxSampleCount));
  }
  return Status::Ok();
}

void EncodeSchema(const DatasetSchema& schema, Bytes& out) {
  out.push_back(static_cast<uint8_t>(schema.element_type));
  out.push_back(static_cast<uint8_t>(schema.shape.size()));
  for (uint32_t dim : schema.shape) AppendU32Le(out, dim);
  out.push_back(static_cast<uint8_t>(schema.label_type));
  AppendU32Le(out, static_cast<uint32_t>(schema.class_names.size()));
  for (const std::string& name : schema.class_names) {
    out.push_back(static_cast<uint8_t>(name.size()));
    Append(out, AsBytes(name));
  }
  AppendU64Le(out, schema.sample_count);
}

Result<DatasetSchema> ParseSchema(ByteReader& reader) {
  DatasetSchema schema;
  CHIRON_ASSIGN_OR_RETURN(uint8_t element_type, reader.U8("schema element type"));
  schema.element_type = static_cast<ElementType>(element_type);
  CHIRON_ASSIGN_OR_RETURN(uint8_t rank, reader.U8("schema rank"));
  if (rank == 0 || rank > kMaxRank) {
    return InvalidArgumentError("schema: rank " + std::to_string(rank) + " is not in 1.." +
                                std::to_string(kMaxRank));
  }
  for (uint8_t i = 0; i < rank; ++i) {
    CHIRON_ASSIGN_OR_RETURN(uint32_t dim, reader.U32Le("schema dimension"));
    schema.shape.push_back(dim);
  }
  CHIRON_ASSIGN_OR_RETURN(uint8_t label_type, reader.U8("schema label type"));
  schema.label_type = static_cast<LabelType>(label_type);
  CHIRON_ASSIGN_OR_RETURN(uint32_t class_count, reader.U32Le("schema class count"));
  if (class_count == 0 || class_count > kMaxClasses) {
    return InvalidArgumentError("schema: class count " + std::to_string(class_count) +
                                " is not in 1.." + std::to_string(kMaxClasses));
  }
  // Each name needs at least 2 bytes, so a short input cannot make us reserve much.
  if (class_count > reader.remaining() / 2) {
    return InvalidArgumentError("schema: class count " + std::to_string(class_count) +
                                " is larger than the remaining header can hold");
  }
  schema.class_names.reserve(class_count);
  for (uint32_t i = 0; i < class_count; ++i) {
    CHIRON_ASSIGN_OR_RETURN(uint8_t size, reader.U8("class name size"));
    CHIRON_ASSIGN_OR_RETURN(ByteSpan name, reader.Take(size, "class name"));
    schema.class_names.push_back(ToString(name));
  }
  CHIRON_ASSIGN_OR_RETURN(schema.sample_count, reader.U64Le("schema sample count"));
  CHIRON_RETURN_IF_ERROR(schema.Validate());
  return schema;
}

}  // namespace chiron::dataset
