#include "runtime/train/trained_model.h"

#include <cmath>
#include <cstring>

namespace chiron::train {
namespace {

constexpr char kMagic[8] = {'C', 'H', 'M', 'O', 'D', 'E', 'L', '1'};
constexpr uint64_t kMaxValues = 1ull << 32;

void AppendFloats(Bytes& out, const std::vector<float>& values) {
  const size_t at = out.size();
  out.resize(at + values.size() * sizeof(float));
  if (!values.empty()) {  // an empty vector's data() may be null, which memcpy may not be given
    std::memcpy(out.data() + at, values.data(), values.size() * sizeof(float));  // little endian
  }
}

Result<std::vector<float>> ReadFloats(ByteReader& reader, uint64_t count, const char* what) {
  if (count > kMaxValues || count > reader.remaining() / sizeof(float)) {
    return InvalidArgumentError(std::string("trained model: ") + what + " count " +
                                std::to_string(count) + " exceeds the bytes present");
  }
  CHIRON_ASSIGN_OR_RETURN(ByteSpan bytes, reader.Take(count * sizeof(float), what));
  std::vector<float> values(count);
  if (count > 0) std::memcpy(values.data(), bytes.data(), bytes.size());
  for (float v : values) {
    if (!std::isfinite(v)) {
      return InvalidArgumentError(std::string("trained model: a non-finite value in ") + what);
    }
  }
  return values;
}

}  // namespace

void EncodeTrainedModel(const TrainedModel& model, Bytes& out) {
  Append(out, ByteSpan(reinterpret_cast<const uint8_t*>(kMagic), sizeof(kMagic)));
  AppendU64Le(out, model.parameters.size());
  AppendU64Le(out, model.buffers.size());
  AppendFloats(out, model.parameters);
  AppendFloats(out, model.buffers);
}

Result<TrainedModel> DecodeTrainedModel(ByteReader& reader) {
  CHIRON_ASSIGN_OR_RETURN(ByteSpan magic, reader.Take(sizeof(kMagic), "trained model magic"));
  if (std::memcmp(magic.data(), kMagic, sizeof(kMagic)) != 0) {
    return InvalidArgumentError("trained model: bad magic (not a Chiron model)");
  }
  CHIRON_ASSIGN_OR_RETURN(uint64_t parameter_count, reader.U64Le("parameter count"));
  CHIRON_ASSIGN_OR_RETURN(uint64_t buffer_count, reader.U64Le("buffer count"));
  TrainedModel model;
  CHIRON_ASSIGN_OR_RETURN(model.parameters, ReadFloats(reader, parameter_count, "parameters"));
  CHIRON_ASSIGN_OR_RETURN(model.buffers, ReadFloats(reader, buffer_count, "buffers"));
  return model;
}

Result<TrainedModel> DecodeTrainedModel(ByteSpan bytes) {
  ByteReader reader(bytes);
  CHIRON_ASSIGN_OR_RETURN(TrainedModel model, DecodeTrainedModel(reader));
  if (!reader.empty()) return InvalidArgumentError("trained model: trailing bytes");
  return model;
}

}  // namespace chiron::train
