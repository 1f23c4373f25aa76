// Grants in the sealed store: the rules (who may be granted what), budgets charged atomically
// with their audit records, persistence, and the hostile host editing the catalog: a grant row
// it inserts, copies, edits or re-parents fails to open and gives no access.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/store/store.h"
#include "runtime/store/store_test_util.h"

namespace chiron::store {
namespace {

using ::testing::HasSubstr;
using testing::ExecSql;
using testing::QueryBlob;
using testing::SeededBytes;

const std::string kAlice(64, 'a');
const std::string kBob(64, 'b');
const std::string kCarol(64, 'd');
const std::string kProvider(64, 'c');
const std::string kModel = kAlice + ".m";

class StoreGrantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Reopen();
    ASSERT_TRUE(store_->RegisterPrincipal(kAlice, Role::kOwner, "Alice").ok());
    ASSERT_TRUE(store_->RegisterPrincipal(kBob, Role::kOwner, "Bob").ok());
    ASSERT_TRUE(store_->RegisterPrincipal(kCarol, Role::kOwner, "Carol").ok());
    ASSERT_TRUE(store_->RegisterPrincipal(kProvider, Role::kProvider, "Provider").ok());
    ASSERT_TRUE(store_->PutBlob(BlobKind::kModel, kModel, kAlice, SeededBytes(1, 100),
                                ToBytes("{}"))
                    .ok());
  }
  void Reopen() {
    store_.reset();
    auto store = Store::Open(dir_.path(), SecretBytes(root_key_), FileSystem::Default());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  std::vector<AuditEvent> Audits(const std::string& what) {
    return {AuditEvent{kAlice, "model.grant", what}, AuditEvent{kBob, "model.grant", what}};
  }
  size_t CountEvents(const std::string& principal, const std::string& event) {
    auto records = store_->ListAudit(principal, 1);
    EXPECT_TRUE(records.ok());
    size_t n = 0;
    for (const auto& r : *records) n += r.event == event ? 1 : 0;
    return n;
  }

  Bytes root_key_ = SeededBytes(42, 32);
  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreGrantsTest, GrantChargeRevokeWithAuditInBothChains) {
  auto grant = store_->PutGrant(kModel, kAlice, kBob, 10, Audits("m to bob"));
  ASSERT_TRUE(grant.ok()) << grant.status().ToString();
  EXPECT_EQ(grant->budget, 10u);
  EXPECT_EQ(grant->used, 0u);
  EXPECT_EQ(CountEvents(kAlice, "model.grant"), 1u);
  EXPECT_EQ(CountEvents(kBob, "model.grant"), 1u);

  auto charged = store_->ChargeGrant(kModel, kBob, 7, {AuditEvent{kAlice, "model.predict", "7"}});
  ASSERT_TRUE(charged.ok());
  EXPECT_EQ(charged->used, 7u);
  auto over = store_->ChargeGrant(kModel, kBob, 4, {AuditEvent{kAlice, "model.predict", "4"}});
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  // Not "spent": 3 are left, the request asks for more, and a smaller one would pass.
  EXPECT_THAT(over.status().message(),
              HasSubstr("has 3 of its 10 queries left and this request asks for 4"));
  EXPECT_THAT(over.status().message(), HasSubstr("send at most 3 samples"));
  EXPECT_EQ(CountEvents(kAlice, "model.predict"), 1u) << "a refused charge writes no record";
  EXPECT_EQ(store_->GetGrant(kModel, kBob)->used, 7u);
  ASSERT_TRUE(store_->ChargeGrant(kModel, kBob, 3, {}).ok());
  auto spent = store_->ChargeGrant(kModel, kBob, 1, {});
  EXPECT_EQ(spent.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(spent.status().message(), HasSubstr("has used all 10 of its queries"));

  // Granting again changes the budget and keeps the usage; it survives a restart.
  ASSERT_TRUE(store_->PutGrant(kModel, kAlice, kBob, 20, Audits("m to bob again")).ok());
  Reopen();
  auto again = store_->GetGrant(kModel, kBob);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->budget, 20u);
  EXPECT_EQ(again->used, 10u);
  ASSERT_TRUE(store_->PutGrant(kModel, kAlice, kCarol, 0, {}).ok());
  EXPECT_EQ(store_->ListGrants(kModel)->size(), 2u);
  EXPECT_EQ(store_->ListGrantsTo(kBob)->size(), 1u);
  EXPECT_EQ(store_->ListGrantsTo(kAlice)->size(), 0u);
  // Budget 0: only the model's budget bounds the grantee.
  EXPECT_TRUE(store_->ChargeGrant(kModel, kCarol, 1000000, {}).ok());

  ASSERT_TRUE(store_->DeleteGrant(kModel, kBob, {AuditEvent{kAlice, "model.revoke", "bob"},
                                                 AuditEvent{kBob, "model.revoke", "by alice"}})
                  .ok());
  EXPECT_EQ(store_->GetGrant(kModel, kBob).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ChargeGrant(kModel, kBob, 1, {}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(CountEvents(kBob, "model.revoke"), 1u);
  EXPECT_EQ(store_->DeleteGrant(kModel, kBob, {}).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeleteGrants(kModel).ok());
  EXPECT_EQ(store_->ListGrants(kModel)->size(), 0u);
}

TEST_F(StoreGrantsTest, OnlyTheModelsOwnerGrantsAndOnlyToOtherOwners) {
  EXPECT_EQ(store_->PutGrant(kModel, kAlice, kProvider, 0, {}).status().code(),
            StatusCode::kPermissionDenied)
      << "providers never see predictions";
  EXPECT_EQ(store_->PutGrant(kModel, kAlice, kAlice, 0, {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->PutGrant(kModel, kBob, kCarol, 0, {}).status().code(),
            StatusCode::kNotFound)
      << "bob does not own alice's model";
  EXPECT_EQ(store_->PutGrant(kAlice + ".nope", kAlice, kBob, 0, {}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->PutGrant(kModel, kAlice, std::string(64, 'e'), 0, {}).status().code(),
            StatusCode::kNotFound)
      << "unregistered grantee";
  EXPECT_EQ(store_->PutGrant(kModel, kAlice, "bad id!", 0, {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListGrants(kModel)->size(), 0u);
}

TEST_F(StoreGrantsTest, HostileHostCannotForgeOrWidenAGrant) {
  ASSERT_TRUE(store_->PutGrant(kModel, kAlice, kBob, 5, {}).ok());
  store_.reset();
  const Bytes sealed = QueryBlob(dir_.path(), "SELECT sealed_record FROM grants WHERE grantee_id='" +
                                                  kBob + "'");
  ASSERT_FALSE(sealed.empty());

  // Copy bob's grant to carol: the seal is bound to (model, grantee, owner).
  ExecSql(dir_.path(), "INSERT INTO grants VALUES('" + kModel + "', '" + kCarol + "', '" + kAlice +
                           "', x'" + HexEncode(sealed) + "')");
  Reopen();
  auto forged = store_->GetGrant(kModel, kCarol);
  EXPECT_EQ(forged.status().code(), StatusCode::kDataLoss) << forged.status().ToString();
  EXPECT_EQ(store_->ChargeGrant(kModel, kCarol, 1, {}).status().code(), StatusCode::kDataLoss);
  store_.reset();
  ExecSql(dir_.path(), "DELETE FROM grants WHERE grantee_id='" + kCarol + "'");

  // Edit a byte of bob's sealed record (e.g. to raise its budget).
  ExecSql(dir_.path(), "UPDATE grants SET sealed_record = substr(sealed_record, 1, 24) || x'ff' "
                       "|| substr(sealed_record, 26) WHERE grantee_id='" + kBob + "'");
  Reopen();
  EXPECT_EQ(store_->GetGrant(kModel, kBob).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(store_->ChargeGrant(kModel, kBob, 1, {}).status().code(), StatusCode::kDataLoss);
  store_.reset();

  // Re-parent the row to another owner: fails too.
  ExecSql(dir_.path(), "UPDATE grants SET sealed_record = x'" + HexEncode(sealed) +
                           "', owner_id='" + kCarol + "' WHERE grantee_id='" + kBob + "'");
  Reopen();
  EXPECT_EQ(store_->GetGrant(kModel, kBob).status().code(), StatusCode::kDataLoss);
  store_.reset();

  // Restored as it was: works again. Deleting the row only takes access away.
  ExecSql(dir_.path(), "UPDATE grants SET owner_id='" + kAlice + "' WHERE grantee_id='" + kBob +
                           "'");
  Reopen();
  ASSERT_TRUE(store_->GetGrant(kModel, kBob).ok());
  store_.reset();
  ExecSql(dir_.path(), "DELETE FROM grants");
  Reopen();
  EXPECT_EQ(store_->GetGrant(kModel, kBob).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace chiron::store
