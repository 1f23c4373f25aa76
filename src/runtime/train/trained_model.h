// A trained model as the runtime keeps it: flat parameters and buffers, in the layout the
// recipe's engine defined, and a canonical byte encoding for sealing (the caller seals; these
// bytes are plaintext parameters and must never leave the runtime unsealed).
//
// Encoding (little endian): "CHMODEL1" | u64 parameter_count | u64 buffer_count |
// f32[parameter_count] | f32[buffer_count]. DecodeTrainedModel refuses anything else, including
// non-finite values.
#pragma once

#include <cstdint>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::train {

struct TrainedModel {
  std::vector<float> parameters;
  std::vector<float> buffers;
  friend bool operator==(const TrainedModel&, const TrainedModel&) = default;
};

void EncodeTrainedModel(const TrainedModel& model, Bytes& out);
// InvalidArgument for a wrong magic, sizes that disagree with the byte count, more than 2^32
// values, or a non-finite value.
Result<TrainedModel> DecodeTrainedModel(ByteReader& reader);
Result<TrainedModel> DecodeTrainedModel(ByteSpan bytes);

}  // namespace chiron::train
