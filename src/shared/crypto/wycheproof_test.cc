// Runs every test case of the Project Wycheproof vectors in $CHIRON_TESTDATA/wycheproof/.
//
// Each test counts the cases it ran and checks the count against the file's numberOfTests, so
// a case can never be skipped silently. Results: "valid" must pass, "invalid" must fail;
// "acceptable" cases (only in x25519_test.json) are decided per flag, documented there.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "shared/crypto/aes_gcm.h"
#include "shared/crypto/gcm_tag.h"
#include "shared/crypto/hkdf.h"
#include "shared/crypto/keys.h"
#include "shared/crypto/test_util.h"
#include "shared/crypto/x25519.h"

namespace chiron::crypto {
namespace {

using nlohmann::json;
using testing::Hex;
using testing::LoadWycheproof;

std::string CaseName(const json& test) {
  return "tcId " + std::to_string(test.at("tcId").get<int>()) + " (" +
         test.value("comment", std::string()) + ")";
}

void ExpectAllCasesRun(const json& file, int run) {
  EXPECT_EQ(run, file.at("numberOfTests").get<int>()) << "some Wycheproof cases were not run";
}

TEST(WycheproofTest, AesGcm) {
  json file = LoadWycheproof("aes_gcm_test.json");
  ASSERT_FALSE(file.is_null());
  int run = 0, valid = 0, invalid = 0, tag_only = 0;
  for (const json& group : file.at("testGroups")) {
    const size_t tag_size = group.at("tagSize").get<size_t>() / 8;
    for (const json& test : group.at("tests")) {
      ++run;
      SCOPED_TRACE(CaseName(test));
      Bytes key = Hex(test.at("key")), iv = Hex(test.at("iv")), aad = Hex(test.at("aad"));
      Bytes msg = Hex(test.at("msg")), ct = Hex(test.at("ct")), tag = Hex(test.at("tag"));
      const std::string result = test.at("result");
      auto opened = AesGcmOpenDetached(key, iv, aad, ct, tag);
      // The tag-only check (GcmTagChecker) must agree with decryption on every case it takes:
      // AES-256, 12-byte IV, 16-byte tag.
      if (key.size() == 32 && iv.size() == 12 && tag_size == 16 && tag.size() == 16) {
        auto checker = GcmTagChecker::Create(key);
        ASSERT_TRUE(checker.ok());
        Status verified = checker->Verify(iv, aad, ct, tag);
        EXPECT_EQ(verified.ok(), result == "valid") << verified.ToString();
        if (!verified.ok()) {
          EXPECT_EQ(verified.code(), StatusCode::kDataLoss);
        }
        ++tag_only;
      }
      if (result == "valid") {
        ++valid;
        ASSERT_TRUE(opened.ok()) << opened.status().ToString();
        EXPECT_EQ(HexEncode(opened->span()), HexEncode(msg));
        auto sealed = AesGcmSealDetached(key, iv, aad, msg, tag_size);
        ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
        EXPECT_EQ(HexEncode(sealed->ciphertext), HexEncode(ct));
        EXPECT_EQ(HexEncode(sealed->tag), HexEncode(tag));
      } else {
        ASSERT_EQ(result, "invalid");
        ++invalid;
        ASSERT_FALSE(opened.ok());
        // A zero-length IV is refused up front; everything else fails authentication.
        EXPECT_EQ(opened.status().code(),
                  iv.empty() ? StatusCode::kInvalidArgument : StatusCode::kDataLoss);
        if (iv.empty()) {
          EXPECT_FALSE(AesGcmSealDetached(key, iv, aad, msg, tag_size).ok());
        }
      }
    }
  }
  ExpectAllCasesRun(file, run);
  RecordProperty("valid", valid);
  RecordProperty("invalid", invalid);
  std::printf("aes_gcm_test.json: %d cases (%d valid, %d invalid); %d also through the tag-only "
              "check\n",
              run, valid, invalid, tag_only);
  EXPECT_GT(tag_only, 20) << "the tag-only check met too few AES-256 cases to mean anything";
}

void RunSignatureFile(const std::string& name, SignatureScheme scheme) {
  json file = LoadWycheproof(name);
  ASSERT_FALSE(file.is_null());
  int run = 0, valid = 0, invalid = 0;
  for (const json& group : file.at("testGroups")) {
    auto key = PublicKey::FromSpkiDer(Hex(group.at("publicKeyDer")));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    ASSERT_EQ(key->scheme(), scheme);
    if (scheme == SignatureScheme::kEd25519) {
      auto raw = PublicKey::FromRaw(scheme, Hex(group.at("publicKey").at("pk")));
      ASSERT_TRUE(raw.ok());
      EXPECT_EQ(*raw->ToSpkiDer(), Hex(group.at("publicKeyDer")));
    } else {
      EXPECT_EQ(group.at("sha").get<std::string>(),
                scheme == SignatureScheme::kEcdsaP256Sha256 ? "SHA-256" : "SHA-384");
      auto raw = PublicKey::FromRaw(scheme, Hex(group.at("publicKey").at("uncompressed")));
      ASSERT_TRUE(raw.ok()) << raw.status().ToString();
      EXPECT_EQ(*raw->ToSpkiDer(), *key->ToSpkiDer());
    }
    for (const json& test : group.at("tests")) {
      ++run;
      SCOPED_TRACE(CaseName(test));
      Status status = key->Verify(Hex(test.at("msg")), Hex(test.at("sig")));
      const std::string result = test.at("result");
      if (result == "valid") {
        ++valid;
        EXPECT_TRUE(status.ok()) << status.ToString();
      } else {
        ASSERT_EQ(result, "invalid") << "no acceptable cases expected in " << name;
        ++invalid;
        EXPECT_EQ(status.code(), StatusCode::kUnauthenticated) << status.ToString();
      }
    }
  }
  ExpectAllCasesRun(file, run);
  std::printf("%s: %d cases (%d valid, %d invalid)\n", name.c_str(), run, valid, invalid);
}

TEST(WycheproofTest, EcdsaP256Sha256Der) {
  RunSignatureFile("ecdsa_secp256r1_sha256_test.json", SignatureScheme::kEcdsaP256Sha256);
}

TEST(WycheproofTest, EcdsaP384Sha384Der) {
  RunSignatureFile("ecdsa_secp384r1_sha384_test.json", SignatureScheme::kEcdsaP384Sha384);
}

TEST(WycheproofTest, Ed25519) {
  RunSignatureFile("ed25519_test.json", SignatureScheme::kEd25519);
}

TEST(WycheproofTest, HkdfSha256) {
  json file = LoadWycheproof("hkdf_sha256_test.json");
  ASSERT_FALSE(file.is_null());
  int run = 0, valid = 0, invalid = 0;
  for (const json& group : file.at("testGroups")) {
    for (const json& test : group.at("tests")) {
      ++run;
      SCOPED_TRACE(CaseName(test));
      auto okm = Hkdf(HashAlgorithm::kSha256, Hex(test.at("ikm")), Hex(test.at("salt")),
                      Hex(test.at("info")), test.at("size").get<size_t>());
      if (test.at("result") == "valid") {
        ++valid;
        ASSERT_TRUE(okm.ok()) << okm.status().ToString();
        EXPECT_EQ(HexEncode(okm->span()), test.at("okm").get<std::string>());
      } else {
        ASSERT_EQ(test.at("result"), "invalid");
        ++invalid;
        EXPECT_EQ(okm.status().code(), StatusCode::kInvalidArgument);
      }
    }
  }
  ExpectAllCasesRun(file, run);
  std::printf("hkdf_sha256_test.json: %d cases (%d valid, %d invalid)\n", run, valid, invalid);
}

// X25519 "acceptable" cases, decided per flag:
//  - ZeroSharedSecret / LowOrderPublic (the peer point has low order, the shared secret is all
//    zeros): REJECTED with Unauthenticated, as RFC 7748 section 6.1 recommends and x25519.h
//    promises. A zero secret means the peer contributed nothing.
//  - Twist, SpecialPublicKey, SmallPublicKey, NonCanonicalPublic, EdgeCaseShared,
//    EdgeCaseMultiplication, Ktv: ACCEPTED with the expected shared secret. RFC 7748 defines the
//    function on every 32-byte string (the top bit masked, non-canonical values reduced), and
//    these inputs do not weaken a party that uses a fresh private key.
TEST(WycheproofTest, X25519) {
  json file = LoadWycheproof("x25519_test.json");
  ASSERT_FALSE(file.is_null());
  const std::set<std::string> kRejectedFlags = {"ZeroSharedSecret", "LowOrderPublic"};
  const std::set<std::string> kAcceptedFlags = {"Twist",
                                                "SpecialPublicKey",
                                                "SmallPublicKey",
                                                "NonCanonicalPublic",
                                                "EdgeCaseShared",
                                                "EdgeCaseMultiplication",
                                                "Ktv",
                                                "Normal"};
  int run = 0, valid = 0, accepted = 0, rejected = 0;
  for (const json& group : file.at("testGroups")) {
    ASSERT_EQ(group.at("curve"), "curve25519");
    for (const json& test : group.at("tests")) {
      ++run;
      SCOPED_TRACE(CaseName(test));
      auto shared = X25519(Hex(test.at("private")), Hex(test.at("public")));
      const std::string result = test.at("result");
      bool reject = false;
      if (result == "acceptable") {
        for (const std::string flag : test.at("flags")) {
          if (kRejectedFlags.count(flag)) {
            reject = true;
          } else {
            ASSERT_TRUE(kAcceptedFlags.count(flag)) << "undecided acceptable flag " << flag;
          }
        }
      } else {
        ASSERT_EQ(result, "valid") << "no invalid cases expected";
        ++valid;
      }
      if (reject) {
        ++rejected;
        EXPECT_EQ(shared.status().code(), StatusCode::kUnauthenticated);
      } else {
        if (result == "acceptable") ++accepted;
        ASSERT_TRUE(shared.ok()) << shared.status().ToString();
        EXPECT_EQ(HexEncode(shared->span()), test.at("shared").get<std::string>());
      }
    }
  }
  ExpectAllCasesRun(file, run);
  std::printf(
      "x25519_test.json: %d cases (%d valid, %d acceptable accepted, %d acceptable "
      "rejected)\n",
      run, valid, accepted, rejected);
}

}  // namespace
}  // namespace chiron::crypto
