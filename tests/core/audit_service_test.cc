// Core tests of AuditService (the audit trail's read side and the event stream's cursors) and of
// the CommitNotifier the write services signal, against the in-memory FakeStore.
#include "server/core/audit_service.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/cartridge_service.h"
#include "server/core/commit_notifier.h"
#include "steritrack/audit_chain.h"
#include "steritrack/error.h"
#include "steritrack/strings.h"
#include "tests/core/fake_store.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 11, 26, 10, 0, 0), absl::UTCTimeZone());

std::string Unit(std::string_view serial) {
  return StrCat("(01)09506000134352(17)271231(10)LOT-A(21)", serial);
}

class AuditServiceTest : public ::testing::Test {
 protected:
  void Receive(const std::string& serial, const std::string& actor = "clerk.ana") {
    ASSERT_TRUE(core_.Receive({.actor = actor}, {Unit(serial)}).ok());
  }

  FakeStore store_;
  FakeClock clock_{kNow};
  CommitNotifier commits_;
  CartridgeService core_{
      {.store = &store_, .sha256 = TestSha256(), .clock = &clock_, .commits = &commits_}};
  AuditService audit_{
      {.store = &store_, .sha256 = TestSha256(), .clock = &clock_, .commits = &commits_}};
};

TEST_F(AuditServiceTest, EveryCommittedWriteNotifiesAndARefusedOneDoesNot) {
  EXPECT_EQ(commits_.count(), 0u);
  Receive("U1");
  EXPECT_EQ(commits_.count(), 1u);
  EXPECT_FALSE(core_.Receive({.actor = "clerk.ana"}, {Unit("U1")}).ok());  // already in stock
  EXPECT_EQ(commits_.count(), 1u);
  // A waiter that already saw the current count times out; one behind returns at once.
  EXPECT_EQ(commits_.WaitForCommitAfter(1, absl::Milliseconds(1)), 1u);
  EXPECT_EQ(commits_.WaitForCommitAfter(0, absl::Hours(1)), 1u);
}

TEST_F(AuditServiceTest, CursorsAreEmptyNowOrOnesWeIssued) {
  Receive("U1");  // LOT_CREATED, CARTRIDGE_RECEIVED
  EXPECT_EQ(*audit_.ParseCursor(""), 0);
  EXPECT_EQ(*audit_.ParseCursor("now"), 2);
  EXPECT_EQ(*audit_.ParseCursor(AuditService::CursorOf(7)), 7);
  for (const char* bad : {"7", "e1.", "e1.x", "e1.-3", "e2.5", "NOW"}) {
    absl::StatusOr<int64_t> parsed = audit_.ParseCursor(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(AuditServiceTest, EventsAfterFiltersActionsButAdvancesPastEverythingScanned) {
  Receive("U1");
  Receive("U2");  // seqs: 1 LOT_CREATED, 2 and 3 CARTRIDGE_RECEIVED
  absl::StatusOr<EventBatch> batch = audit_.EventsAfter(0, {"LOT_CREATED"}, 10);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->events.size(), 1u);
  EXPECT_EQ(batch->events[0].seq, 1);
  EXPECT_EQ(batch->scanned_to, 3);
  batch = audit_.EventsAfter(1, {}, 1);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->events.size(), 1u);
  EXPECT_EQ(batch->events[0].seq, 2);
  EXPECT_EQ(batch->events[0].after, "state=RECEIVED");
  batch = audit_.EventsAfter(3, {}, 10);
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->events.empty());
  EXPECT_EQ(batch->scanned_to, 3);
}

TEST_F(AuditServiceTest, ListEntriesPagesAndFiltersAndVerifyCountsTheFakeChain) {
  Receive("U1", "clerk.ana");
  Receive("U2", "clerk.bo");
  Receive("U3", "clerk.ana");
  absl::StatusOr<Page<Event>> page =
      audit_.ListEntries({.page = {.page_size = 1}, .actor = "clerk.ana"});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].seq, 1);
  page = audit_.ListEntries(
      {.page = {.page_size = 10, .page_token = page->next_page_token}, .actor = "clerk.ana"});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[1].seq, 4);
  EXPECT_TRUE(page->next_page_token.empty());
  EXPECT_EQ(audit_.ListEntries({.action = "bad\naction"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<AuditChainCheck> check = audit_.Verify();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->intact);
  EXPECT_EQ(check->entries, 4);
}

TEST_F(AuditServiceTest, ACorrectionIsANewEntryPointingAtTheOneItCorrects) {
  Receive("U1");  // 1 LOT_CREATED, 2 CARTRIDGE_RECEIVED
  const std::vector<Event> before = store_.Snapshot().events;
  clock_.Advance(absl::Minutes(3));
  absl::StatusOr<Event> c = audit_.CorrectAuditEntry({.actor = "manager.ng", .request_id = "c-1"},
                                                     2, "received by clerk.bo, not clerk.ana");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->seq, 3);
  EXPECT_EQ(c->action, "AUDIT_CORRECTION");
  EXPECT_EQ(c->corrects_seq, 2);
  EXPECT_EQ(c->detail, "received by clerk.bo, not clerk.ana");
  EXPECT_EQ(c->actor, "manager.ng");
  EXPECT_EQ(c->at, kNow + absl::Minutes(3));
  EXPECT_EQ(c->request_id, "c-1");
  EXPECT_EQ(c->cartridge_id, before[1].cartridge_id);  // about the same record
  // Nothing updated or deleted: the first two entries are as they were.
  const std::vector<Event> after = store_.Snapshot().events;
  ASSERT_EQ(after.size(), 3u);
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].action, before[i].action);
    EXPECT_EQ(after[i].detail, before[i].detail);
    EXPECT_EQ(after[i].corrects_seq, 0);
  }
  EXPECT_EQ(commits_.count(), 2u);
  // A retry under the same request id returns the first answer and appends nothing.
  absl::StatusOr<Event> again = audit_.CorrectAuditEntry(
      {.actor = "manager.ng", .request_id = "c-1"}, 2, "received by clerk.bo, not clerk.ana");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->seq, 3);
  EXPECT_EQ(store_.Snapshot().events.size(), 3u);
  // The same id for another correction is refused.
  EXPECT_EQ(audit_.CorrectAuditEntry({.actor = "manager.ng", .request_id = "c-1"}, 1, "other")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<AuditChainCheck> check = audit_.Verify();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->intact);
  EXPECT_EQ(check->entries, 3);
}

TEST_F(AuditServiceTest, ACorrectionNeedsAKnownEntryANoteAndAnActor) {
  Receive("U1");
  absl::StatusOr<Event> unknown = audit_.CorrectAuditEntry({.actor = "manager.ng"}, 99, "note");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  std::optional<ErrorInfo> info = GetErrorInfo(unknown.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason, "AUDIT_ENTRY_NOT_FOUND");
  EXPECT_EQ(audit_.CorrectAuditEntry({.actor = "manager.ng"}, 1, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(audit_.CorrectAuditEntry({.actor = ""}, 1, "note").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(audit_.CorrectAuditEntry({.actor = "manager.ng"}, 0, "note").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.Snapshot().events.size(), 2u);
}

// A backend's migration chains the entries written before the trail was chained with core's
// function: the result is the chain Append builds, entry for entry, so Verify accepts it.
TEST(AuditChainTest, ChainingExistingEntriesGivesTheChainAppendBuilds) {
  FakeStore appended;
  std::vector<Event> existing;
  {
    std::unique_ptr<WriteTransaction> tx = *appended.BeginWrite();
    for (int i = 1; i <= 4; ++i) {
      Event e{.at = kNow + absl::Seconds(i),
              .actor = "clerk.old",
              .action = "LOT_CREATED",
              .detail = StrCat("old entry ", i)};
      ASSERT_TRUE(audit_chain::Append(tx->audit(), *TestSha256(), e).ok());
      e.seq = i;
      existing.push_back(e);  // as a pre-chain database holds it: no hashes
    }
    ASSERT_TRUE(tx->Commit().ok());
  }
  ASSERT_TRUE(audit_chain::ChainExisting(*TestSha256(), existing).ok());
  std::unique_ptr<ReadTransaction> tx = *appended.BeginRead();
  std::vector<Event> stored = *tx->audit().ListAuditEntries({.limit = 10});
  ASSERT_EQ(stored.size(), existing.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(existing[i].prev_hash, stored[i].prev_hash) << "entry " << i + 1;
    EXPECT_EQ(existing[i].hash, stored[i].hash) << "entry " << i + 1;
  }
  EXPECT_EQ(existing.front().prev_hash, audit_chain::kGenesisHash);
  absl::StatusOr<AuditChainCheck> check = audit_chain::Verify(tx->audit(), *TestSha256());
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_TRUE(check->intact) << check->problem;
}

TEST(AuditChainTest, ChainingExistingEntriesRefusesThemOutOfOrder) {
  std::vector<Event> entries = {Event{.seq = 2, .at = kNow}, Event{.seq = 1, .at = kNow}};
  EXPECT_EQ(audit_chain::ChainExisting(*TestSha256(), entries).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace steritrack
