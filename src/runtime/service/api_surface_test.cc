// Nobody can download a model's parameters or a recipe's code through any call: checked over the
// whole public API, not one RPC at a time. Every service of every file in proto/chiron/v1 is
// walked from its response messages (streamed or not), through every nested message field; each
// field that could carry bulk numbers or opaque bytes (bytes, repeated float/double) and each
// field whose name suggests model state or code must be on the reviewed allowlist below, with
// the reason it is safe. A new proto file, service, or response field of those kinds fails this
// test until someone reviews it and adds it here.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "chiron/v1/attestation.pb.h"
#include "chiron/v1/audit.pb.h"
#include "chiron/v1/datasets.pb.h"
#include "chiron/v1/jobs.pb.h"
#include "chiron/v1/models.pb.h"
#include "chiron/v1/principals.pb.h"
#include "chiron/v1/recipes.pb.h"

namespace chiron {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;

// field full name → why it cannot carry parameters or recipe code.
const std::map<std::string, std::string>& Allowlist() {
  static const auto* list = new std::map<std::string, std::string>{
      {"chiron.v1.GetEvidenceResponse.evidence",
       "the runtime's attestation evidence (docs/formats/evidence.md)"},
      {"chiron.v1.BeginUploadResponse.upload_ticket",
       "32 fresh random bytes from the runtime's RNG (DataPlaneServer::IssueTicket), nothing else"},
      {"chiron.v1.AuditRecord.previous_hash", "32-byte SHA-256 of the previous audit record"},
      {"chiron.v1.AuditRecord.hash", "32-byte SHA-256 of this audit record"},
      {"chiron.v1.Prediction.probabilities",
       "at most top-k rounded softmax values per sample, after the output policy"},
      {"chiron.v1.EvaluationReport.per_class_accuracy", "one aggregate per class"},
      {"chiron.v1.OwnerJobView.per_class_accuracy", "one aggregate per class"},
      {"chiron.v1.RecipeHyperParameters.weight_decay",
       "one double: the optimizer's declared weight-decay coefficient, not a model weight"},
  };
  return *list;
}

// Names that would suggest model state or code in a response.
bool SuspiciousName(const std::string& name) {
  for (const char* word : {"parameter", "weight", "gradient", "checkpoint", "shared_object",
                           "code", "tensor", "state_dict", "buffer"}) {
    if (name.find(word) != std::string::npos) return true;
  }
  return false;
}

bool Risky(const FieldDescriptor& field) {
  if (field.type() == FieldDescriptor::TYPE_BYTES) return true;
  if (field.is_repeated() && (field.cpp_type() == FieldDescriptor::CPPTYPE_FLOAT ||
                              field.cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE)) {
    return true;
  }
  return SuspiciousName(field.name());
}

void Walk(const Descriptor& message, std::set<std::string>& seen,
          std::set<std::string>& risky) {
  if (!seen.insert(message.full_name()).second) return;
  for (int i = 0; i < message.field_count(); ++i) {
    const FieldDescriptor& field = *message.field(i);
    if (Risky(field)) risky.insert(field.full_name());
    if (field.message_type() != nullptr) Walk(*field.message_type(), seen, risky);
  }
}

// One message of each file, so that the generated pool holds them all.
std::vector<const FileDescriptor*> ApiFiles() {
  return {v1::GetEvidenceRequest::descriptor()->file(), v1::AuditRecord::descriptor()->file(),
          v1::ListDatasetsRequest::descriptor()->file(), v1::JobRef::descriptor()->file(),
          v1::PredictRequest::descriptor()->file(),
          v1::RegisterPrincipalRequest::descriptor()->file(),
          v1::RegisterRecipeRequest::descriptor()->file()};
}

TEST(ApiSurfaceTest, EveryProtoFileIsChecked) {
  std::set<std::string> on_disk;
  for (const auto& entry : std::filesystem::directory_iterator(CHIRON_PROTO_DIR)) {
    if (entry.path().extension() == ".proto") {
      on_disk.insert("chiron/v1/" + entry.path().filename().string());
    }
  }
  std::set<std::string> checked;
  for (const FileDescriptor* file : ApiFiles()) checked.insert(file->name());
  EXPECT_EQ(on_disk, checked) << "add the new proto file to ApiFiles()";
}

TEST(ApiSurfaceTest, NoResponseCarriesParametersOrRecipeCode) {
  std::set<std::string> seen;
  std::set<std::string> risky;
  int methods = 0;
  for (const FileDescriptor* file : ApiFiles()) {
    for (int s = 0; s < file->service_count(); ++s) {
      for (int m = 0; m < file->service(s)->method_count(); ++m) {
        Walk(*file->service(s)->method(m)->output_type(), seen, risky);
        ++methods;
      }
    }
  }
  EXPECT_GE(methods, 20) << "the walk found the services";
  EXPECT_TRUE(seen.count("chiron.v1.PredictResponse"));
  EXPECT_TRUE(seen.count("chiron.v1.RecipeCard"));
  EXPECT_TRUE(seen.count("chiron.v1.ModelInfo"));
  for (const std::string& field : risky) {
    EXPECT_TRUE(Allowlist().count(field))
        << field << " can carry bulk bytes or numbers (or names model state) in a response: "
        << "make sure it cannot carry parameters or recipe code, then add it to Allowlist()";
  }
  // The recipe's code exists in the API only as a request field, never reachable in an answer.
  EXPECT_FALSE(seen.count("chiron.v1.RegisterRecipeRequest"));
  EXPECT_FALSE(risky.count("chiron.v1.RegisterRecipeRequest.shared_object"));
}

TEST(ApiSurfaceTest, TheCheckCatchesAResponseThatCarriesCode) {
  // The request that uploads a recipe's code, walked as if it were a response: flagged.
  std::set<std::string> seen;
  std::set<std::string> risky;
  Walk(*v1::RegisterRecipeRequest::descriptor(), seen, risky);
  ASSERT_TRUE(risky.count("chiron.v1.RegisterRecipeRequest.shared_object"));
  EXPECT_FALSE(Allowlist().count("chiron.v1.RegisterRecipeRequest.shared_object"));
}

}  // namespace
}  // namespace chiron
