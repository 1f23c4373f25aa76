#include "shared/worker_abi/worker_protocol.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>

#include "shared/worker_abi/sandbox_policy.h"

namespace chiron {
namespace {

uint64_t DoubleBits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  return bits;
}

WorkerFrame GradientsReady(uint64_t sequence, uint64_t count, double loss, uint64_t samples) {
  WorkerFrame frame;
  frame.type = WorkerFrameType::kGradientsReady;
  frame.sequence = sequence;
  frame.fields = {count, DoubleBits(loss), samples, 3, 0, 0};
  return frame;
}

WorkerFrameExpectation ExpectGradients() {
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kGradientsReady;
  expect.sequence = 7;
  expect.count = 100;
  expect.sample_count = 32;
  expect.buffer_count = 3;
  return expect;
}

WorkerChecked<WorkerFrame> RoundTrip(const WorkerFrame& frame,
                                     const WorkerFrameExpectation& expect) {
  auto bytes = EncodeWorkerFrame(frame);
  return ValidateWorkerFrame(ByteSpan(bytes.data(), bytes.size()), expect);
}

TEST(WorkerProtocolTest, EncodesTheDocumentedLayout) {
  WorkerFrame frame;
  frame.type = WorkerFrameType::kPredict;
  frame.sequence = 0x0102030405060708ULL;
  frame.fields[0] = 0x11;
  auto bytes = EncodeWorkerFrame(frame);
  ASSERT_EQ(bytes.size(), 64u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 4), "CHWF");
  EXPECT_EQ(bytes[4], 3);  // version
  EXPECT_EQ(bytes[5], 0);
  EXPECT_EQ(bytes[6], 4);  // kPredict
  EXPECT_EQ(bytes[8], 0x08);
  EXPECT_EQ(bytes[15], 0x01);
  EXPECT_EQ(bytes[16], 0x11);
  auto decoded = DecodeWorkerFrame(ByteSpan(bytes.data(), bytes.size()));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->type, WorkerFrameType::kPredict);
  EXPECT_EQ(decoded->sequence, frame.sequence);
  EXPECT_EQ(decoded->fields, frame.fields);
}

TEST(WorkerProtocolTest, AcceptsTheExpectedResponse) {
  auto frame = RoundTrip(GradientsReady(7, 100, 2.5, 32), ExpectGradients());
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  EXPECT_EQ(frame->fields[0], 100u);
}

TEST(WorkerProtocolTest, RejectsEverySizeButSixtyFour) {
  auto bytes = EncodeWorkerFrame(GradientsReady(7, 100, 2.5, 32));
  Bytes longer(bytes.begin(), bytes.end());
  longer.push_back(0);
  EXPECT_EQ(ValidateWorkerFrame(longer, ExpectGradients()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateWorkerFrame(longer, ExpectGradients()).refusal(), WorkerRefusal::kFrameSize);
  EXPECT_EQ(ValidateWorkerFrame(ByteSpan(bytes.data(), 63), ExpectGradients()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateWorkerFrame(ByteSpan(), ExpectGradients()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(WorkerProtocolTest, RejectsBadHeaderFields) {
  auto bytes = EncodeWorkerFrame(GradientsReady(7, 100, 2.5, 32));
  auto corrupt = [&](size_t offset, uint8_t value) {
    auto copy = bytes;
    copy[offset] = value;
    return ValidateWorkerFrame(ByteSpan(copy.data(), copy.size()), ExpectGradients());
  };
  EXPECT_EQ(corrupt(0, 'X').refusal(), WorkerRefusal::kFrameMagic);
  EXPECT_EQ(corrupt(4, 1).refusal(), WorkerRefusal::kProtocolVersion);
  EXPECT_EQ(corrupt(6, 99).refusal(), WorkerRefusal::kFrameType);
  EXPECT_EQ(corrupt(6, 0).refusal(), WorkerRefusal::kFrameType);
}

TEST(WorkerProtocolTest, RejectsWrongTypeSequenceAndCounts) {
  EXPECT_EQ(RoundTrip(GradientsReady(8, 100, 2.5, 32), ExpectGradients()).refusal(),
            WorkerRefusal::kSequence);
  EXPECT_EQ(RoundTrip(GradientsReady(7, 99, 2.5, 32), ExpectGradients()).refusal(),
            WorkerRefusal::kCount);
  EXPECT_EQ(RoundTrip(GradientsReady(7, 100, 2.5, 31), ExpectGradients()).refusal(),
            WorkerRefusal::kCount);
  WorkerFrame output;
  output.type = WorkerFrameType::kOutputReady;
  output.sequence = 7;
  output.fields[0] = 100;
  EXPECT_EQ(RoundTrip(output, ExpectGradients()).refusal(), WorkerRefusal::kFrameType);
  // A worker may not send a request type.
  WorkerFrame request;
  request.type = WorkerFrameType::kComputeGradients;
  request.sequence = 7;
  WorkerFrameExpectation expect_request = ExpectGradients();
  expect_request.type = WorkerFrameType::kComputeGradients;
  EXPECT_EQ(RoundTrip(request, expect_request).refusal(), WorkerRefusal::kRequestType);
  EXPECT_EQ(RoundTrip(request, ExpectGradients()).refusal(), WorkerRefusal::kRequestType);
}

TEST(WorkerProtocolTest, RejectsNonFiniteAndHugeLoss) {
  EXPECT_FALSE(
      RoundTrip(GradientsReady(7, 100, std::numeric_limits<double>::quiet_NaN(), 32),
                ExpectGradients())
          .ok());
  EXPECT_FALSE(
      RoundTrip(GradientsReady(7, 100, std::numeric_limits<double>::infinity(), 32),
                ExpectGradients())
          .ok());
  EXPECT_EQ(RoundTrip(GradientsReady(7, 100, -1e300, 32), ExpectGradients()).refusal(),
            WorkerRefusal::kLoss);
}

TEST(WorkerProtocolTest, UnusedFieldsMustBeZero) {
  WorkerFrame frame = GradientsReady(7, 100, 2.5, 32);
  frame.fields[5] = 1;
  auto result = RoundTrip(frame, ExpectGradients());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.refusal(), WorkerRefusal::kUnusedField);
  EXPECT_EQ(result.status().message(), WorkerRefusalMessage(WorkerRefusal::kUnusedField));
}

TEST(WorkerProtocolTest, FailedFramesCarryOnlyKnownReasons) {
  WorkerFrame failed;
  failed.type = WorkerFrameType::kFailed;
  failed.sequence = 7;
  failed.fields[0] = static_cast<uint64_t>(WorkerFailure::kRecipeError);
  auto ok = RoundTrip(failed, ExpectGradients());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->type, WorkerFrameType::kFailed);
  failed.fields[0] = 12345;
  EXPECT_EQ(RoundTrip(failed, ExpectGradients()).refusal(), WorkerRefusal::kFailureReason);
}

TEST(WorkerProtocolTest, HelloMustCarryThePolicyFingerprint) {
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kHello;
  expect.policy_fingerprint = SandboxPolicyFingerprint();
  expect.min_landlock_abi = 3;
  WorkerFrame hello;
  hello.type = WorkerFrameType::kHello;
  hello.fields = {SandboxPolicyFingerprint(), 7, 0, 0, 0, 0};
  EXPECT_TRUE(RoundTrip(hello, expect).ok());
  hello.fields[0] ^= 1;
  EXPECT_EQ(RoundTrip(hello, expect).refusal(), WorkerRefusal::kPolicyFingerprint);
  hello.fields = {SandboxPolicyFingerprint(), 2, 0, 0, 0, 0};
  EXPECT_EQ(RoundTrip(hello, expect).refusal(), WorkerRefusal::kLandlockAbi);
}

TEST(WorkerProtocolTest, FloatArenaRejectsNanInfAndOutOfRange) {
  std::vector<float> values = {0.5f, -3.0f, 1e-20f, 0.0f};
  ByteSpan bytes(reinterpret_cast<const uint8_t*>(values.data()), values.size() * sizeof(float));
  auto good = ValidateFloatArena(bytes, 4, 10.0f);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, values);
  EXPECT_EQ(ValidateFloatArena(bytes, 5, 10.0f).refusal(),  // larger than the copy
            WorkerRefusal::kArenaSize);
  EXPECT_EQ(ValidateFloatArena(bytes, 4, 2.0f).refusal(), WorkerRefusal::kOutOfRange);  // |-3|
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    values[2] = bad;
    auto result = ValidateFloatArena(bytes, 4, 10.0f);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.refusal(), WorkerRefusal::kNotFinite);
    // The index of the bad value is the worker's choice: the message does not carry it.
    EXPECT_EQ(result.status().message().find('2'), std::string::npos)
        << result.status().message();
  }
}

TEST(WorkerProtocolTest, GradientsReadyMustEchoTheBufferCount) {
  WorkerFrame frame = GradientsReady(7, 100, 2.5, 32);
  frame.fields[3] = 4;
  auto result = RoundTrip(frame, ExpectGradients());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.refusal(), WorkerRefusal::kCount);
}

TEST(WorkerProtocolTest, ConfigureFrameRoundTripsAndRejectsOutOfRange) {
  WorkerJobConfig config;
  config.schema.input_shape = {3, 32, 32};
  config.schema.element_type = ElementType::kF32;
  config.schema.class_count = 65536;
  config.threads = 2;
  config.seed = 0xfeedfacecafebeefULL;
  config.max_batch = 512;
  auto frame = EncodeConfigureFrame(config, 1);
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  auto bytes = EncodeWorkerFrame(*frame);
  auto decoded = DecodeWorkerFrame(ByteSpan(bytes.data(), bytes.size()));
  ASSERT_TRUE(decoded.ok());
  auto back = DecodeConfigureFrame(*decoded);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->schema.input_shape, config.schema.input_shape);
  EXPECT_EQ(back->schema.element_type, ElementType::kF32);
  EXPECT_EQ(back->schema.class_count, 65536);
  EXPECT_EQ(back->threads, 2u);
  EXPECT_EQ(back->seed, config.seed);
  EXPECT_EQ(back->max_batch, 512u);

  WorkerJobConfig bad = config;
  bad.schema.input_shape = {1, 2, 3, 4, 5};
  EXPECT_FALSE(EncodeConfigureFrame(bad, 1).ok());
  bad = config;
  bad.schema.class_count = 0;
  EXPECT_FALSE(EncodeConfigureFrame(bad, 1).ok());
  bad = config;
  bad.threads = 0;
  EXPECT_FALSE(EncodeConfigureFrame(bad, 1).ok());
  // The worker refuses a frame with a dimension past the rank or a zero dimension.
  WorkerFrame corrupt = *frame;
  corrupt.fields[3] |= 7ull << 32;
  EXPECT_FALSE(DecodeConfigureFrame(corrupt).ok());
  corrupt = *frame;
  corrupt.fields[2] &= ~0xffffffffull;
  EXPECT_FALSE(DecodeConfigureFrame(corrupt).ok());
}

TEST(WorkerProtocolTest, ConfiguredLayoutMustFitTheArenas) {
  WorkerFrameExpectation expect;
  expect.type = WorkerFrameType::kConfigured;
  expect.sequence = 1;
  expect.max_arena_count = 1000;
  expect.max_output_size = 10;
  WorkerFrame frame;
  frame.type = WorkerFrameType::kConfigured;
  frame.sequence = 1;
  frame.fields = {900, 100, 10, 0, 0, 0};
  EXPECT_TRUE(RoundTrip(frame, expect).ok());
  frame.fields = {900, 101, 10, 0, 0, 0};  // one float past the arena
  EXPECT_EQ(RoundTrip(frame, expect).refusal(), WorkerRefusal::kLayout);
  frame.fields = {0, 0, 10, 0, 0, 0};  // no parameters
  EXPECT_FALSE(RoundTrip(frame, expect).ok());
  frame.fields = {10, ~0ull, 10, 0, 0, 0};  // overflow of parameters + buffers
  EXPECT_FALSE(RoundTrip(frame, expect).ok());
  frame.fields = {10, 0, 11, 0, 0, 0};  // output size
  EXPECT_EQ(RoundTrip(frame, expect).refusal(), WorkerRefusal::kOutputSize);
}

TEST(WorkerProtocolTest, RecipeDeclarationsRoundTripExactly) {
  TrainingConfig training;
  training.optimizer.kind = OptimizerKind::kAdamW;
  training.optimizer.learning_rate = 0.1 / 3;
  training.optimizer.weight_decay = 1e-4;
  training.optimizer.beta2 = 0.98;
  training.schedule.kind = ScheduleKind::kCosine;
  training.schedule.warmup_steps = 17;
  training.schedule.min_learning_rate = 1e-7;
  training.epochs = 12;
  training.batch_size = 128;
  ResourceBudget budget{1ull << 30, 3600};
  OutputPolicy output{.kind = OutputKind::kLabelOnly, .max_top_k = 3, .decimals = 2};
  RecipeDeclarationValues values = PackRecipeDeclarations(training, budget, output);
  TrainingConfig t;
  ResourceBudget b;
  OutputPolicy o;
  ASSERT_TRUE(UnpackRecipeDeclarations(values, t, b, &o).ok());
  EXPECT_EQ(o.kind, OutputKind::kLabelOnly);
  EXPECT_EQ(o.max_top_k, 3u);
  EXPECT_EQ(o.decimals, 2u);
  EXPECT_EQ(t.optimizer.kind, OptimizerKind::kAdamW);
  EXPECT_EQ(t.optimizer.learning_rate, training.optimizer.learning_rate);
  EXPECT_EQ(t.optimizer.beta2, 0.98);
  EXPECT_EQ(t.schedule.kind, ScheduleKind::kCosine);
  EXPECT_EQ(t.schedule.warmup_steps, 17u);
  EXPECT_EQ(t.schedule.min_learning_rate, 1e-7);
  EXPECT_EQ(t.epochs, 12u);
  EXPECT_EQ(t.batch_size, 128u);
  EXPECT_EQ(b.max_memory_size, 1ull << 30);
  EXPECT_EQ(b.max_training_seconds, 3600u);
  values[14] = 1ull << 40;  // epochs wider than u32
  EXPECT_EQ(UnpackRecipeDeclarations(values, t, b).refusal(), WorkerRefusal::kDeclarations);
  values = PackRecipeDeclarations(training, budget);
  values[18] = 0;  // no output kind (a worker of protocol version 2)
  EXPECT_FALSE(UnpackRecipeDeclarations(values, t, b).ok());
  values[18] = 3;  // unknown output kind
  EXPECT_FALSE(UnpackRecipeDeclarations(values, t, b).ok());
  values = PackRecipeDeclarations(training, budget);
  values[19] = uint64_t{7} << 32;  // 7 decimals: more than kMaxOutputDecimals
  EXPECT_FALSE(UnpackRecipeDeclarations(values, t, b).ok());
  values[19] = kMaxOutputTopK + 1;
  EXPECT_FALSE(UnpackRecipeDeclarations(values, t, b).ok());
}

// The closed list: every reason has a distinct name and message, no message ends with another
// (WorkerRefusalOf reads the reason back from a message with words in front), and RefuseWorker
// carries exactly the fixed text.
TEST(WorkerRefusalTest, TheListIsClosedAndEachTextIsFixed) {
  std::set<std::string_view> names, messages;
  for (const WorkerRefusalText& row : kWorkerRefusals) {
    EXPECT_TRUE(names.insert(row.name).second) << row.name;
    EXPECT_TRUE(messages.insert(row.message).second) << row.message;
    const Status status = RefuseWorker(row.reason);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message(), row.message);
    EXPECT_EQ(WorkerRefusalOf(status), row.reason);
    EXPECT_EQ(WorkerRefusalOf(Status(StatusCode::kInvalidArgument,
                                     "worker failed (invalid output): " + status.message())),
              row.reason);
    for (const WorkerRefusalText& other : kWorkerRefusals) {
      if (other.reason == row.reason) continue;
      EXPECT_FALSE(row.message.ends_with(other.message)) << row.name << " / " << other.name;
    }
  }
  EXPECT_EQ(WorkerRefusalOf(InvalidArgumentError("something else")), std::nullopt);
  EXPECT_EQ(WorkerRefusalOf(UnavailableError(std::string(kWorkerRefusals[0].message))),
            std::nullopt);
}

// Whatever a worker puts in a frame, a refusal's message is one of the fixed texts: the secret
// it planted in the sequence, a count, the type, an unused field, the loss, the page or the
// failure reason never comes back.
TEST(WorkerRefusalTest, NoFrameFieldReachesTheMessage) {
  constexpr uint64_t kSecret = 0x5EC2E7C0FFEE1234ULL;
  std::mt19937_64 random(12);
  const WorkerFrameType responses[] = {
      WorkerFrameType::kHello, WorkerFrameType::kGradientsReady, WorkerFrameType::kOutputReady,
      WorkerFrameType::kFailed, WorkerFrameType::kConfigured, WorkerFrameType::kDescription,
      WorkerFrameType::kParametersReady, WorkerFrameType::kPredict};
  int refused = 0;
  for (int round = 0; round < 20000; ++round) {
    WorkerFrame frame;
    frame.type = responses[random() % std::size(responses)];
    frame.sequence = random() % 4 == 0 ? kSecret : 7;
    for (uint64_t& field : frame.fields) {
      const uint64_t pick = random() % 4;
      field = pick == 0 ? kSecret : pick == 1 ? (kSecret & 0xffff) : pick == 2 ? 0 : 100;
    }
    auto bytes = EncodeWorkerFrame(frame);
    if (random() % 8 == 0) bytes[6] = static_cast<uint8_t>(kSecret);  // unknown type 0x34
    for (WorkerFrameType expected : responses) {
      WorkerFrameExpectation expect = ExpectGradients();
      expect.type = expected;
      expect.max_arena_count = 1000;
      expect.max_output_size = 10;
      auto result = ValidateWorkerFrame(ByteSpan(bytes.data(), bytes.size()), expect);
      if (result.ok()) continue;
      ++refused;
      EXPECT_EQ(result.status().message(), WorkerRefusalMessage(result.refusal()));
    }
  }
  EXPECT_GT(refused, 10000);
  // And every fixed text is free of digits but the frame size: nothing numeric to fill in.
  for (const WorkerRefusalText& row : kWorkerRefusals) {
    std::string text(row.message);
    if (size_t at = text.find("64 bytes"); at != std::string::npos) text.erase(at, 2);
    EXPECT_EQ(text.find_first_of("0123456789"), std::string::npos) << row.message;
  }
}

TEST(WorkerProtocolTest, InputArenaLabelsStartOnACacheLine) {
  EXPECT_EQ(InputLabelOffset(3, 7), 64u);
  EXPECT_EQ(InputLabelOffset(64, 784), 64u * 784);
  EXPECT_EQ(InputArenaBytes(3, 7), 64u + 6);
}

TEST(SandboxPolicyTest, TextListsEveryRuleAndFingerprintIsStable) {
  const std::string_view text = SandboxPolicyBytes();
  for (const SyscallRule& rule : WorkerSyscallRules()) {
    EXPECT_NE(text.find("allow " + std::string(rule.name) + " "), std::string_view::npos)
        << rule.name;
  }
  EXPECT_EQ(text.find("allow socket"), std::string_view::npos);
  EXPECT_EQ(SandboxPolicyFingerprint(), SandboxPolicyFingerprint());
  EXPECT_NE(SandboxPolicyFingerprint(), 0u);
}

}  // namespace
}  // namespace chiron
