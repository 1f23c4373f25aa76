// Encrypting a SampleSource into a dataset container while it streams.
//
// This is the client half of an upload: samples are pulled from the importer one at a time and
// sealed chunk by chunk by dataset::DatasetWriter; `sink` receives the header and then each
// sealed chunk and can send it on at once. At no point is more than one chunk of plaintext (plus
// one sample) held in memory, and both buffers are zeroed when released.
#pragma once

#include "client/importers/sample_source.h"
#include "shared/dataset/container.h"

namespace chiron::importers {

struct EncryptStats {
  uint64_t samples = 0;
  uint64_t plaintext_bytes = 0;  // records (label + sample) sealed
  uint64_t container_bytes = 0;  // header + sealed chunks sent to the sink
  uint64_t chunks = 0;
};

// Errors from the source (naming file and record), the writer or the sink, unchanged.
Result<EncryptStats> EncryptSource(SampleSource& source, ByteSpan key,
                                   const dataset::DatasetId& dataset_id,
                                   const dataset::ContainerSink& sink,
                                   dataset::DatasetWriterOptions options = {});

}  // namespace chiron::importers
