#include "runtime/train/metrics.h"

#include <cmath>
#include <cstring>
#include <string>

namespace chiron::train {

Result<MetricsAccumulator> MetricsAccumulator::Create(int64_t class_count) {
  if (class_count < 1 || class_count > 65536) {
    return InvalidArgumentError("metrics: class count " + std::to_string(class_count) +
                                " must be in [1, 65536]");
  }
  return MetricsAccumulator(class_count);
}

Status MetricsAccumulator::Add(std::span<const float> logits, std::span<const int64_t> labels) {
  const size_t classes = static_cast<size_t>(class_count_);
  if (logits.size() != labels.size() * classes) {
    return InvalidArgumentError("metrics: " + std::to_string(logits.size()) + " logits for " +
                                std::to_string(labels.size()) + " examples of " +
                                std::to_string(classes) + " classes");
  }
  // Check everything first so a bad batch leaves the totals untouched.
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= class_count_) {
      return InvalidArgumentError("metrics: label " + std::to_string(labels[i]) + " of example " +
                                  std::to_string(i) + " is outside [0, " + std::to_string(classes) +
                                  ")");
    }
  }
  for (float v : logits) {
    if (!std::isfinite(v)) {
      return InvalidArgumentError("metrics: the worker returned a NaN or infinite logit");
    }
  }
  double loss_sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* row = logits.data() + i * classes;
    size_t best = 0;
    double max = row[0];
    for (size_t c = 1; c < classes; ++c) {
      if (row[c] > row[best]) best = c;
      if (row[c] > max) max = row[c];
    }
    double sum = 0;
    for (size_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(row[c]) - max);
    const size_t label = static_cast<size_t>(labels[i]);
    loss_sum += std::log(sum) + max - static_cast<double>(row[label]);
    ++confusion_[label * classes + best];
  }
  loss_sum_ += loss_sum;
  example_count_ += labels.size();
  return Status::Ok();
}

ClassificationReport MetricsAccumulator::Report() const {
  ClassificationReport report;
  const size_t classes = static_cast<size_t>(class_count_);
  report.class_count = class_count_;
  report.example_count = example_count_;
  report.confusion = confusion_;
  report.per_class_count.assign(classes, 0);
  report.per_class_accuracy.assign(classes, 0.0);
  uint64_t correct = 0;
  for (size_t label = 0; label < classes; ++label) {
    uint64_t row_total = 0;
    for (size_t p = 0; p < classes; ++p) row_total += confusion_[label * classes + p];
    const uint64_t hits = confusion_[label * classes + label];
    correct += hits;
    report.per_class_count[label] = row_total;
    if (row_total != 0) {
      report.per_class_accuracy[label] = static_cast<double>(hits) / static_cast<double>(row_total);
    }
  }
  if (example_count_ != 0) {
    report.accuracy = static_cast<double>(correct) / static_cast<double>(example_count_);
    report.mean_loss = loss_sum_ / static_cast<double>(example_count_);
  }
  return report;
}

Bytes MetricsAccumulator::Serialize() const {
  Bytes out;
  AppendU64Le(out, static_cast<uint64_t>(class_count_));
  AppendU64Le(out, example_count_);
  uint64_t loss_bits;
  std::memcpy(&loss_bits, &loss_sum_, sizeof(loss_bits));
  AppendU64Le(out, loss_bits);
  for (uint64_t count : confusion_) AppendU64Le(out, count);
  return out;
}

Status MetricsAccumulator::Merge(ByteSpan serialized) {
  ByteReader reader(serialized);
  CHIRON_ASSIGN_OR_RETURN(uint64_t classes, reader.U64Le("class count"));
  CHIRON_ASSIGN_OR_RETURN(uint64_t examples, reader.U64Le("example count"));
  CHIRON_ASSIGN_OR_RETURN(uint64_t loss_bits, reader.U64Le("loss sum"));
  if (classes != static_cast<uint64_t>(class_count_) ||
      reader.remaining() != confusion_.size() * sizeof(uint64_t)) {
    return InvalidArgumentError("metrics to merge: for another class count or truncated");
  }
  double loss;
  std::memcpy(&loss, &loss_bits, sizeof(loss));
  if (!std::isfinite(loss)) return InvalidArgumentError("metrics to merge: non-finite loss");
  std::vector<uint64_t> counts(confusion_.size());
  uint64_t total = 0;
  for (uint64_t& count : counts) {
    CHIRON_ASSIGN_OR_RETURN(count, reader.U64Le("confusion count"));
    total += count;
  }
  if (total != examples) {
    return InvalidArgumentError("metrics to merge: the confusion matrix does not add up");
  }
  for (size_t i = 0; i < counts.size(); ++i) confusion_[i] += counts[i];
  example_count_ += examples;
  loss_sum_ += loss;
  return Status::Ok();
}

}  // namespace chiron::train
