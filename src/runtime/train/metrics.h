// Evaluation metrics computed by the trusted runtime from the worker's logits.
//
// The owner's validation report (accuracy, per-class accuracy, confusion matrix, mean loss) is
// computed here, never by the recipe: the recipe only returns fixed-size logit vectors, and
// nothing it could encode in them reaches the provider. Logits come from the untrusted worker, so
// Add() checks them (finite values, sizes) before counting anything; labels come from the owner's
// dataset and are checked against the class count.
//
// Thread safety: not thread-safe; one accumulator per evaluation.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::train {

struct ClassificationReport {
  uint64_t example_count = 0;
  double accuracy = 0;   // fraction of examples whose arg-max logit is the label
  double mean_loss = 0;  // mean cross-entropy (natural log) of softmax(logits) against the label
  // per_class_accuracy[c] = correct / examples of class c (0 when the class has no example).
  std::vector<double> per_class_accuracy;
  std::vector<uint64_t> per_class_count;
  // confusion[label * class_count + predicted].
  std::vector<uint64_t> confusion;
  int64_t class_count = 0;
};

class MetricsAccumulator {
 public:
  // class_count in [1, 65536].
  static Result<MetricsAccumulator> Create(int64_t class_count);

  // Adds `labels.size()` examples. `logits` holds labels.size() rows of class_count values.
  // InvalidArgument (and nothing counted) on a size mismatch, a label outside [0, class_count),
  // or a non-finite logit. Ties in the arg-max go to the lowest class index (as torch.argmax).
  Status Add(std::span<const float> logits, std::span<const int64_t> labels);

  ClassificationReport Report() const;

  // The counts so far as bytes (class count, examples, loss sum, confusion matrix), and adding
  // another accumulator's bytes to these: how the nodes of a data-parallel job score their
  // validation splits together. Merge: InvalidArgument (and nothing added) if the bytes do not
  // parse, are for another class count, or carry a non-finite loss.
  Bytes Serialize() const;
  Status Merge(ByteSpan serialized);

 private:
  explicit MetricsAccumulator(int64_t class_count)
      : class_count_(class_count), confusion_(static_cast<size_t>(class_count * class_count), 0) {}

  int64_t class_count_;
  uint64_t example_count_ = 0;
  double loss_sum_ = 0;
  std::vector<uint64_t> confusion_;
};

}  // namespace chiron::train
