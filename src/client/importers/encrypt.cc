#include "client/importers/encrypt.h"

#include "shared/base/secret.h"

namespace chiron::importers {

Result<EncryptStats> EncryptSource(SampleSource& source, ByteSpan key,
                                   const dataset::DatasetId& dataset_id,
                                   const dataset::ContainerSink& sink,
                                   dataset::DatasetWriterOptions options) {
  EncryptStats stats;
  dataset::ContainerSink counting_sink = [&](const dataset::ContainerPiece& piece) {
    stats.container_bytes += piece.bytes.size();
    if (piece.kind == dataset::ContainerPiece::Kind::kChunk) ++stats.chunks;
    return sink(piece);
  };
  const dataset::DatasetSchema& schema = source.schema();
  CHIRON_ASSIGN_OR_RETURN(
      std::unique_ptr<dataset::DatasetWriter> writer,
      dataset::DatasetWriter::Create(key, dataset_id, schema, counting_sink, options));
  SecretBytes sample(schema.sample_size());
  while (true) {
    uint32_t label = 0;
    CHIRON_ASSIGN_OR_RETURN(bool more, source.Next(sample.mutable_span(), label));
    if (!more) break;
    CHIRON_RETURN_IF_ERROR(writer->Add(label, sample.span()));
    ++stats.samples;
  }
  CHIRON_RETURN_IF_ERROR(writer->Finish());
  stats.plaintext_bytes = stats.samples * schema.record_size();
  return stats;
}

}  // namespace chiron::importers
