#include "server/core/access_service.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "steritrack/strings.h"
#include "tests/core/fake_store.h"
#include "tests/status_matchers.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 12, 1, 9, 0, 0), absl::UTCTimeZone());

// Predictable secrets: 00..01, 00..02, ... so a test knows what the next token is.
class CountingSecrets final : public SecretSource {
 public:
  absl::StatusOr<std::string> NewSecretHex(int bytes) const override {
    std::string hex(static_cast<size_t>(bytes) * 2, '0');
    std::string n = StrCat(++next_);
    hex.replace(hex.size() - n.size(), n.size(), n);
    return hex;
  }

 private:
  mutable int next_ = 0;
};

class AccessServiceTest : public ::testing::Test {
 protected:
  AccessService& service() { return service_; }

  IssuedToken MustCreate(std::string name, std::string role, int days = 0) {
    absl::StatusOr<IssuedToken> t = service_.CreateToken(
        WriteContext{.actor = "admin.ada"},
        NewToken{.name = std::move(name), .role = std::move(role), .expires_in_days = days});
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : IssuedToken{};
  }

  std::vector<std::string> Actions() {
    std::vector<std::string> actions;
    for (const Event& e : store_.Snapshot().events) actions.push_back(e.action);
    return actions;
  }

  FakeClock clock_{kNow};
  FakeStore store_;
  CountingSecrets secrets_;
  AccessService service_{
      {.store = &store_, .sha256 = TestSha256(), .secrets = &secrets_, .clock = &clock_}};
};

TEST_F(AccessServiceTest, ATokenIsShownOnceAndStoredOnlyAsItsHash) {
  IssuedToken t = MustCreate("nurse.kim", "nurse");
  EXPECT_EQ(t.secret, "stk_" + std::string(63, '0') + "1");
  EXPECT_EQ(t.token.secret_sha256, TestSha256()->HexDigest({t.secret}));
  const FakeStoreState state = store_.Snapshot();
  ASSERT_EQ(state.tokens.size(), 1u);
  const ApiToken& stored = state.tokens.begin()->second;
  EXPECT_EQ(stored.name, "nurse.kim");
  EXPECT_EQ(stored.role, Role::kNurse);
  EXPECT_EQ(stored.created_by, "admin.ada");
  EXPECT_EQ(stored.created_at, kNow);
  EXPECT_FALSE(stored.expires_at.has_value());
  // The audit trail records the creation, never the secret.
  ASSERT_EQ(state.events.size(), 1u);
  EXPECT_EQ(state.events[0].action, "TOKEN_CREATED");
  EXPECT_EQ(state.events[0].actor, "admin.ada");
  EXPECT_THAT(state.events[0].detail + state.events[0].after, Not(HasSubstr(t.secret.substr(4))));
}

TEST_F(AccessServiceTest, AValidTokenIsItsNameAndRole) {
  IssuedToken t = MustCreate("spd.lee", "sterile_processing");
  absl::StatusOr<Identity> who = service().AuthenticateToken(t.secret);
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->name, "spd.lee");
  EXPECT_EQ(who->role, Role::kSterileProcessing);
  EXPECT_EQ(who->source, Identity::Source::kToken);
}

TEST_F(AccessServiceTest, MissingGarbageAndUnknownTokensAreRefused) {
  MustCreate("nurse.kim", "nurse");
  EXPECT_THAT(service().AuthenticateToken(""),
              IsRefused(absl::StatusCode::kUnauthenticated, "CREDENTIALS_MISSING"));
  for (const std::string& bad : std::vector<std::string>{
           "garbage", "stk_", "stk_" + std::string(64, 'g'), "STK_" + std::string(63, '0') + "1",
           "stk_" + std::string(63, '0') + "9"}) {
    EXPECT_THAT(service().AuthenticateToken(bad),
                IsRefused(absl::StatusCode::kUnauthenticated, "CREDENTIALS_INVALID"))
        << bad;
  }
}

TEST_F(AccessServiceTest, ARevokedTokenIsRefusedFromTheNextCallOn) {
  IssuedToken t = MustCreate("nurse.kim", "nurse");
  ASSERT_TRUE(service().AuthenticateToken(t.secret).ok());
  clock_.Advance(absl::Minutes(5));
  absl::StatusOr<ApiToken> revoked =
      service().RevokeToken(WriteContext{.actor = "admin.ada"}, "nurse.kim");
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->revoked_at, kNow + absl::Minutes(5));
  EXPECT_EQ(revoked->revoked_by, "admin.ada");
  absl::StatusOr<Identity> who = service().AuthenticateToken(t.secret);
  EXPECT_THAT(who, IsRefused(absl::StatusCode::kUnauthenticated, "CREDENTIALS_REVOKED"));
  EXPECT_EQ(MetaOf(who.status(), "name"), "nurse.kim");
  // Revoking again answers the same revoked token; an unknown name is NOT_FOUND.
  absl::StatusOr<ApiToken> again = service().RevokeToken(WriteContext{.actor = "x"}, "nurse.kim");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->revoked_by, "admin.ada");
  EXPECT_THAT(service().RevokeToken(WriteContext{.actor = "x"}, "nobody"),
              IsRefused(absl::StatusCode::kNotFound, "TOKEN_NOT_FOUND"));
  EXPECT_THAT(Actions(), ElementsAre("TOKEN_CREATED", "TOKEN_REVOKED"));
  // The name is free again; the old secret stays refused.
  IssuedToken renewed = MustCreate("nurse.kim", "nurse");
  EXPECT_TRUE(service().AuthenticateToken(renewed.secret).ok());
  EXPECT_THAT(service().AuthenticateToken(t.secret),
              IsRefused(absl::StatusCode::kUnauthenticated, "CREDENTIALS_REVOKED"));
}

TEST_F(AccessServiceTest, AnExpiredTokenIsRefusedFromItsExpiryOn) {
  IssuedToken t = MustCreate("integration.erp", "integrator", /*days=*/2);
  EXPECT_EQ(t.token.expires_at, kNow + absl::Hours(48));
  clock_.Advance(absl::Hours(48) - absl::Seconds(1));
  EXPECT_TRUE(service().AuthenticateToken(t.secret).ok());
  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<Identity> who = service().AuthenticateToken(t.secret);
  EXPECT_THAT(who, IsRefused(absl::StatusCode::kUnauthenticated, "CREDENTIALS_EXPIRED"));
  EXPECT_EQ(MetaOf(who.status(), "expired"), "2026-12-03T09:00:00Z");
}

TEST_F(AccessServiceTest, OnlyAChainWideAdminCreatesAChainWideTokenOverTheApi) {
  const WriteContext ctx{.actor = "admin.ada"};
  const Identity site_admin{.name = "admin.ada", .role = Role::kAdmin, .site = "north"};
  const NewToken chain_manager{.name = "chain.mo", .role = "manager", .chain_wide = true};
  EXPECT_THAT(service().CreateToken(ctx, site_admin, chain_manager),
              IsRefused(absl::StatusCode::kPermissionDenied, "CHAIN_WIDE_NOT_ALLOWED"));
  EXPECT_TRUE(store_.Snapshot().tokens.empty());
  // The site's admin still creates the site's own tokens.
  EXPECT_TRUE(service().CreateToken(ctx, site_admin, {.name = "kim", .role = "nurse"}).ok());
  const Identity chain_admin{.name = "admin.ada", .role = Role::kAdmin, .chain_wide = true};
  absl::StatusOr<IssuedToken> issued = service().CreateToken(ctx, chain_admin, chain_manager);
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_TRUE(issued->token.chain_wide);
  EXPECT_THAT(Actions(), ElementsAre("TOKEN_CREATED", "TOKEN_CREATED"));
}

TEST_F(AccessServiceTest, BadRequestsNameTheFieldAndStoreNothing) {
  const WriteContext ctx{.actor = "admin.ada"};
  EXPECT_THAT(service().CreateToken(ctx, {.name = "", .role = "nurse"}), IsInvalidField("name"));
  EXPECT_THAT(service().CreateToken(ctx, {.name = "nurse kim", .role = "nurse"}),
              IsInvalidField("name"));
  EXPECT_THAT(service().CreateToken(ctx, {.name = std::string(65, 'a'), .role = "nurse"}),
              IsInvalidField("name"));
  EXPECT_THAT(service().CreateToken(ctx, {.name = "kim", .role = "doctor"}),
              IsInvalidField("role"));
  EXPECT_THAT(service().CreateToken(ctx, {.name = "kim", .role = "Nurse"}), IsInvalidField("role"));
  EXPECT_THAT(service().CreateToken(ctx, {.name = "kim", .role = "nurse", .expires_in_days = -1}),
              IsInvalidField("expires_in_days"));
  MustCreate("kim", "nurse");
  EXPECT_THAT(service().CreateToken(ctx, {.name = "kim", .role = "manager"}),
              IsRefused(absl::StatusCode::kAlreadyExists, "TOKEN_NAME_EXISTS"));
  EXPECT_EQ(store_.Snapshot().tokens.size(), 1u);
  EXPECT_THAT(Actions(), ElementsAre("TOKEN_CREATED"));
}

TEST_F(AccessServiceTest, ACertificateIsItsCommonNameWithTheRoleOfItsUnit) {
  absl::StatusOr<Identity> who = AccessService::IdentityFromCertificate("nurse.kim", "nurse");
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->name, "nurse.kim");
  EXPECT_EQ(who->role, Role::kNurse);
  EXPECT_EQ(who->source, Identity::Source::kCertificate);
  EXPECT_THAT(AccessService::IdentityFromCertificate("nurse.kim", "nurses"),
              IsRefused(absl::StatusCode::kUnauthenticated, "CREDENTIALS_INVALID"));
  EXPECT_THAT(AccessService::IdentityFromCertificate("", "nurse"),
              IsRefused(absl::StatusCode::kUnauthenticated, "CREDENTIALS_INVALID"));
}

TEST_F(AccessServiceTest, ARefusedCallIsAnAuditEntryUnderTheCallersName) {
  ASSERT_TRUE(service()
                  .RecordAccessDenied(Identity{.name = "nurse.kim", .role = Role::kNurse},
                                      "/steritrack.v1.InventoryService/RecallLot")
                  .ok());
  const FakeStoreState state = store_.Snapshot();
  ASSERT_EQ(state.events.size(), 1u);
  EXPECT_EQ(state.events[0].action, "ACCESS_DENIED");
  EXPECT_EQ(state.events[0].actor, "nurse.kim");
  EXPECT_THAT(state.events[0].detail, HasSubstr("RecallLot"));
  EXPECT_THAT(state.events[0].detail, HasSubstr("nurse"));
}

TEST_F(AccessServiceTest, ListTokensShowsRevokedOnesAndNoSecrets) {
  IssuedToken a = MustCreate("a", "admin");
  MustCreate("b", "manager");
  ASSERT_TRUE(service().RevokeToken(WriteContext{.actor = "a"}, "b").ok());
  absl::StatusOr<std::vector<ApiToken>> all = service().ListTokens();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "a");
  EXPECT_FALSE((*all)[0].revoked_at.has_value());
  EXPECT_EQ((*all)[1].name, "b");
  EXPECT_TRUE((*all)[1].revoked_at.has_value());
  EXPECT_NE((*all)[0].secret_sha256, a.secret);
}

}  // namespace
}  // namespace steritrack
