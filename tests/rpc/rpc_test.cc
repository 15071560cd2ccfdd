// RPC-tier tests: a real in-process RpcServer on port 0 over a SQLite store in a temporary file,
// with a fixed test clock and a ring-buffer log sink, driven through the generated steritrack.v1
// stubs (and a generic stub for health checking and reflection). They check what a client sees on
// the wire: status codes, the google.rpc.Status / ErrorInfo details, actors from the request
// header, idempotent replay and pagination, and what the server writes to its log.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "server/core/access_service.h"
#include "server/core/cartridge_service.h"
#include "server/rpc/server.h"
#include "server/storage/sqlite_store.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "steritrack/clock.h"
#include "steritrack/secret.h"
#include "steritrack/store.h"
#include "steritrack/strings.h"
#include "steritrack/v1/inventory.grpc.pb.h"
#include "steritrack/v1/treatment.grpc.pb.h"
#include "tests/rpc/tokens.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr std::string_view kGtin = "09506000134352";
// The header earlier versions took the actor from; now ignored (the identity is the actor).
constexpr char kActorHeader[] = "x-steritrack-actor";

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss), absl::UTCTimeZone());
}

const absl::Time kNow = Utc(2026, 11, 26, 10, 0, 0);

// "(01)<gtin>(17)<expiry>(10)<lot>(21)<serial>".
std::string Unit(std::string_view serial, std::string_view expiry = "271231",
                 std::string_view lot = "LOT-A") {
  return StrCat("(01)", kGtin, "(17)", expiry, "(10)", lot, "(21)", serial);
}

absl::Time ParseRfc3339(const std::string& text) {
  absl::Time t = absl::InfinitePast();
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    ADD_FAILURE() << "not RFC 3339: \"" << text << "\": " << err;
  }
  return t;
}

int64_t Seconds(const google::protobuf::Timestamp& ts) { return ts.seconds(); }

class TestClock final : public Clock {
 public:
  explicit TestClock(absl::Time t) : micros_(absl::ToUnixMicros(t)) {}
  absl::Time Now() const override { return absl::FromUnixMicros(micros_.load()); }
  void Set(absl::Time t) { micros_.store(absl::ToUnixMicros(t)); }

 private:
  std::atomic<int64_t> micros_;
};

// Forwards to `base`; once armed, the next BeginWrite() signals that it was reached and waits until
// released. Lets a test hold a request inside the server deterministically.
class GateStore final : public Store {
 public:
  explicit GateStore(Store* base) : base_(base) {}

  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginRead() override {
    return base_->BeginRead();
  }
  absl::StatusOr<std::unique_ptr<WriteTransaction>> BeginWrite() override {
    if (armed_.exchange(false)) {
      entered_->count_down();
      release_->wait();
    }
    return base_->BeginWrite();
  }

  void Arm() {
    entered_ = std::make_unique<std::latch>(1);
    release_ = std::make_unique<std::latch>(1);
    armed_ = true;
  }
  void WaitUntilEntered() { entered_->wait(); }
  void Release() { release_->count_down(); }

 private:
  Store* base_;
  std::atomic<bool> armed_{false};
  std::unique_ptr<std::latch> entered_;
  std::unique_ptr<std::latch> release_;
};

// The google.rpc.Status a client finds in a failed call's details, with its one ErrorInfo.
struct WireError {
  google::rpc::Status status;
  google::rpc::ErrorInfo info;
};

// Succeeds when `s` has `code` and carries a google.rpc.Status with exactly one ErrorInfo, domain
// "steritrack" and `reason`; fills `out`.
::testing::AssertionResult IsRefusal(const grpc::Status& s, grpc::StatusCode code,
                                     std::string_view reason, WireError* out = nullptr) {
  if (s.error_code() != code) {
    return ::testing::AssertionFailure()
           << "code " << s.error_code() << " (" << s.error_message() << "), expected " << code;
  }
  WireError wire;
  if (!wire.status.ParseFromString(s.error_details())) {
    return ::testing::AssertionFailure() << "error_details is not a google.rpc.Status";
  }
  if (wire.status.code() != static_cast<int32_t>(code)) {
    return ::testing::AssertionFailure() << "google.rpc.Status code " << wire.status.code();
  }
  if (wire.status.message() != s.error_message()) {
    return ::testing::AssertionFailure() << "google.rpc.Status message \"" << wire.status.message()
                                         << "\" differs from \"" << s.error_message() << "\"";
  }
  int infos = 0;
  for (const google::protobuf::Any& any : wire.status.details()) {
    if (any.Is<google::rpc::ErrorInfo>()) {
      ++infos;
      any.UnpackTo(&wire.info);
    }
  }
  if (infos != 1 || wire.status.details_size() != 1) {
    return ::testing::AssertionFailure()
           << wire.status.details_size() << " details, " << infos << " ErrorInfo";
  }
  if (wire.info.domain() != "steritrack") {
    return ::testing::AssertionFailure() << "domain " << wire.info.domain();
  }
  if (wire.info.reason() != reason) {
    return ::testing::AssertionFailure() << "reason " << wire.info.reason() << ", expected "
                                         << reason << " (" << s.error_message() << ")";
  }
  if (out != nullptr) *out = std::move(wire);
  return ::testing::AssertionSuccess();
}

std::string Meta(const WireError& e, const std::string& key) {
  auto it = e.info.metadata().find(key);
  return it == e.info.metadata().end() ? StrCat("<no ", key, ">") : it->second;
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

grpc::ByteBuffer BufferOf(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

class RpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = StrCat(::testing::TempDir(), "rpc_test.XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    dir_ = pattern;
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore({.path = StrCat(dir_, "/steritrack.db")});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    tokens_ = std::make_unique<TokenBook>(StrCat(dir_, "/steritrack.db"));
    secrets_ = NewSecretSource();
    access_ = std::make_unique<AccessService>(AccessService::Options{.store = store_.get(),
                                                                     .sha256 = TestSha256(),
                                                                     .secrets = secrets_.get(),
                                                                     .clock = &clock_});
    gate_ = std::make_unique<GateStore>(store_.get());
    core_ = std::make_unique<CartridgeService>(
        CartridgeServiceOptions{.store = gate_.get(), .sha256 = TestSha256(), .clock = &clock_});
    log_sink_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
    log_ = std::make_shared<spdlog::logger>("rpc_test", log_sink_);
    log_->set_pattern("%l %v");
    absl::StatusOr<std::unique_ptr<rpc::RpcServer>> server = rpc::RpcServer::Start(
        {.listen = "127.0.0.1:0", .core = core_.get(), .log = log_, .access = access_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
    channel_ = grpc::CreateChannel(StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    inventory_ = v1::InventoryService::NewStub(channel_);
    treatments_ = v1::TreatmentService::NewStub(channel_);
  }

  void TearDown() override {
    inventory_.reset();
    treatments_.reset();
    channel_.reset();
    server_.reset();
    core_.reset();
    access_.reset();
    gate_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // A client context with the bearer token of `actor` (an admin made by steritrackd token create;
  // no credentials when `actor` is empty) and a generous deadline, so that a broken server fails
  // the test instead of hanging it.
  std::unique_ptr<grpc::ClientContext> Context(const std::string& actor = "nurse.kim") {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!actor.empty()) tokens_->Authorize(*ctx, actor);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return ctx;
  }

  grpc::Status Receive(const std::vector<std::string>& barcodes,
                       v1::ReceiveCartridgesResponse* out = nullptr,
                       const std::string& actor = "nurse.kim", const std::string& request_id = "") {
    v1::ReceiveCartridgesRequest req;
    for (const std::string& b : barcodes) req.add_barcodes(b);
    req.set_request_id(request_id);
    v1::ReceiveCartridgesResponse resp;
    grpc::Status s = inventory_->ReceiveCartridges(Context(actor).get(), req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }
  void MustReceive(const std::vector<std::string>& barcodes) {
    grpc::Status s = Receive(barcodes);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  }

  std::string MustStartTreatment(const std::string& room = "Room 3",
                                 const std::string& client_ref = "client-0042",
                                 const std::string& actor = "nurse.kim") {
    v1::StartTreatmentRequest req;
    req.set_room(room);
    req.set_clinician("dr.lee");
    req.set_client_ref(client_ref);
    v1::Treatment resp;
    grpc::Status s = treatments_->StartTreatment(Context(actor).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return resp.id();
  }

  grpc::Status Open(const std::string& barcode, const std::string& treatment_id,
                    v1::Cartridge* out = nullptr, const std::string& actor = "nurse.kim",
                    const std::string& request_id = "") {
    v1::OpenCartridgeRequest req;
    req.set_barcode(barcode);
    req.set_treatment_id(treatment_id);
    req.set_request_id(request_id);
    v1::Cartridge resp;
    grpc::Status s = treatments_->OpenCartridge(Context(actor).get(), req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }
  void MustOpen(const std::string& barcode, const std::string& treatment_id) {
    grpc::Status s = Open(barcode, treatment_id);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  }

  grpc::Status Dispose(const std::string& barcode, const std::string& container) {
    v1::DisposeCartridgeRequest req;
    req.set_barcode(barcode);
    req.set_container_id(container);
    v1::Cartridge resp;
    return treatments_->DisposeCartridge(Context().get(), req, &resp);
  }

  v1::Cartridge MustGetCartridge(const std::string& barcode) {
    v1::GetCartridgeRequest req;
    req.set_barcode(barcode);
    v1::Cartridge resp;
    grpc::Status s = inventory_->GetCartridge(Context().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return resp;
  }

  static int CountActions(const v1::Cartridge& c, std::string_view action) {
    int n = 0;
    for (const v1::HistoryEvent& e : c.history()) n += e.action() == action ? 1 : 0;
    return n;
  }

  std::vector<std::string> LogLines() { return log_sink_->last_formatted(); }

  TestClock clock_{kNow};
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<GateStore> gate_;
  std::unique_ptr<CartridgeService> core_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_sink_;
  std::unique_ptr<TokenBook> tokens_;
  std::unique_ptr<SecretSource> secrets_;
  std::unique_ptr<AccessService> access_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<rpc::RpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InventoryService::Stub> inventory_;
  std::unique_ptr<v1::TreatmentService::Stub> treatments_;
};

// ---------------------------------------------------------------------------------------------------
// The barcode the server returns is one its own parser reads back

TEST_F(RpcTest, ALotWithABracketComesBackAsABarcodeTheServerReadsAgain) {
  // A GS1 DataMatrix scan: '(' is in character set 82, so "LOT(A)" is a valid lot.
  const std::string scan = StrCat("]d201", kGtin, "17271231", "10LOT(A)\x1d", "21S1");
  v1::ReceiveCartridgesResponse received;
  grpc::Status s = Receive({scan}, &received);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_THAT(received.cartridges(), SizeIs(1));
  const std::string barcode = received.cartridges(0).barcode();
  EXPECT_EQ(barcode, StrCat("(01)", kGtin, "(17)271231(10)LOT\\(A)(21)S1"));

  const v1::Cartridge read = MustGetCartridge(barcode);
  EXPECT_EQ(read.lot().lot(), "LOT(A)");
  EXPECT_EQ(read.serial(), "S1");
  EXPECT_EQ(read.barcode(), barcode);
  // The returned barcode is the unit: it opens it.
  v1::Cartridge opened;
  s = Open(barcode, MustStartTreatment(), &opened);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(opened.state(), v1::CARTRIDGE_STATE_OPENED);
  EXPECT_EQ(opened.lot().lot(), "LOT(A)");
}

// ---------------------------------------------------------------------------------------------------
// A cartridge read carries core's verdict: what OpenCartridge would answer now

TEST_F(RpcTest, ACartridgeInStockInDateReadsAsAllowedToOpen) {
  MustReceive({Unit("S1")});
  const v1::Verdict verdict = MustGetCartridge(Unit("S1")).open_verdict();
  EXPECT_TRUE(verdict.allowed());
  EXPECT_EQ(verdict.reason(), "");
  EXPECT_EQ(verdict.message(), "");
  EXPECT_THAT(verdict.metadata(), IsEmpty());
}

TEST_F(RpcTest, AUsedCartridgeReadsAsRefusedWithTheSameReasonAndFactsAsASecondOpen) {
  MustReceive({Unit("S1")});
  const std::string t = MustStartTreatment("Room 3");
  MustOpen(Unit("S1"), t);
  clock_.Set(kNow + absl::Minutes(20));
  const v1::Verdict verdict = MustGetCartridge(Unit("S1")).open_verdict();
  WireError e;
  ASSERT_TRUE(IsRefusal(Open(Unit("S1"), MustStartTreatment("Room 5")),
                        grpc::StatusCode::FAILED_PRECONDITION, "CARTRIDGE_ALREADY_USED", &e));
  EXPECT_FALSE(verdict.allowed());
  EXPECT_EQ(verdict.reason(), "CARTRIDGE_ALREADY_USED");
  EXPECT_EQ(verdict.message(), e.status.message());
  EXPECT_EQ(verdict.metadata().at("room"), "Room 3");
  EXPECT_EQ(verdict.metadata().at("treatment"), t);
  EXPECT_EQ(verdict.metadata().at("when"), Meta(e, "when"));
}

TEST_F(RpcTest, AnExpiredCartridgeReadsAsRefusedWithItsExpiryDate) {
  MustReceive({Unit("S1", "261231", "LOT-DEC")});
  clock_.Set(Utc(2027, 1, 1, 8, 0));
  const v1::Cartridge c = MustGetCartridge(Unit("S1", "261231", "LOT-DEC"));
  EXPECT_EQ(c.state(), v1::CARTRIDGE_STATE_RECEIVED);
  EXPECT_FALSE(c.open_verdict().allowed());
  EXPECT_EQ(c.open_verdict().reason(), "CARTRIDGE_EXPIRED");
  EXPECT_EQ(c.open_verdict().metadata().at("expiry"), "2026-12-31");
  EXPECT_THAT(c.open_verdict().message(), HasSubstr("2026-12-31"));
}

TEST_F(RpcTest, ARecalledCartridgeReadsAsRefusedWithTheRecallReason) {
  MustReceive({Unit("S1")});
  v1::RecallLotRequest recall;
  recall.set_gtin(std::string(kGtin));
  recall.set_lot("LOT-A");
  recall.set_reason("FSCA-2026-114 sterility breach");
  v1::RecallLotResponse recalled;
  grpc::Status s = inventory_->RecallLot(Context("manager.ann").get(), recall, &recalled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const v1::Verdict verdict = MustGetCartridge(Unit("S1")).open_verdict();
  EXPECT_FALSE(verdict.allowed());
  EXPECT_EQ(verdict.reason(), "LOT_RECALLED");
  EXPECT_EQ(verdict.metadata().at("reason"), "FSCA-2026-114 sterility breach");
  EXPECT_EQ(verdict.metadata().at("when"), "2026-11-26T10:00:00Z");
}

// ---------------------------------------------------------------------------------------------------
// Refusals on the wire

TEST_F(RpcTest, SecondOpenIsRefusedWithWhenRoomAndTreatmentOfTheFirstUse) {
  MustReceive({Unit("S1")});
  const std::string first = MustStartTreatment("Room 3");
  MustOpen(Unit("S1"), first);
  clock_.Set(kNow + absl::Minutes(20));
  const std::string second = MustStartTreatment("Room 5");

  WireError e;
  EXPECT_TRUE(IsRefusal(Open(Unit("S1"), second), grpc::StatusCode::FAILED_PRECONDITION,
                        "CARTRIDGE_ALREADY_USED", &e));
  EXPECT_EQ(ParseRfc3339(Meta(e, "when")), kNow);
  EXPECT_EQ(Meta(e, "room"), "Room 3");
  EXPECT_EQ(Meta(e, "treatment"), first);
  EXPECT_EQ(CountActions(MustGetCartridge(Unit("S1")), "CARTRIDGE_OPENED"), 1);
}

TEST_F(RpcTest, OpenOfAnExpiredUnitIsRefusedWithItsExpiryDate) {
  MustReceive({Unit("S1", "261231", "LOT-DEC")});
  const std::string t = MustStartTreatment();
  clock_.Set(Utc(2027, 1, 1, 8, 0));
  WireError e;
  EXPECT_TRUE(IsRefusal(Open(Unit("S1", "261231", "LOT-DEC"), t),
                        grpc::StatusCode::FAILED_PRECONDITION, "CARTRIDGE_EXPIRED", &e));
  EXPECT_EQ(Meta(e, "expiry"), "2026-12-31");
  EXPECT_EQ(MustGetCartridge(Unit("S1", "261231", "LOT-DEC")).state(),
            v1::CARTRIDGE_STATE_RECEIVED);
}

TEST_F(RpcTest, OpenOfARecalledUnitIsRefusedWithTheRecallReasonAndTime) {
  MustReceive({Unit("S1")});
  const std::string t = MustStartTreatment();
  const absl::Time recalled_at = kNow + absl::Hours(1);
  clock_.Set(recalled_at);
  v1::RecallLotRequest recall;
  recall.set_gtin(std::string(kGtin));
  recall.set_lot("LOT-A");
  recall.set_reason("FSCA-2026-114 sterility breach");
  v1::RecallLotResponse recalled;
  grpc::Status s = inventory_->RecallLot(Context("manager.ann").get(), recall, &recalled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(recalled.lot().state(), v1::LOT_STATE_RECALLED);
  EXPECT_EQ(recalled.lot().state_changed_by(), "manager.ann");

  clock_.Set(recalled_at + absl::Minutes(5));
  WireError e;
  EXPECT_TRUE(
      IsRefusal(Open(Unit("S1"), t), grpc::StatusCode::FAILED_PRECONDITION, "LOT_RECALLED", &e));
  EXPECT_EQ(Meta(e, "reason"), "FSCA-2026-114 sterility breach");
  EXPECT_EQ(ParseRfc3339(Meta(e, "when")), recalled_at);
}

TEST_F(RpcTest, OpenOfADisposedUnitIsRefusedAsDisposed) {
  MustReceive({Unit("S1")});
  const std::string first = MustStartTreatment("Room 3");
  MustOpen(Unit("S1"), first);
  grpc::Status disposed = Dispose(Unit("S1"), "SHARPS-7");
  ASSERT_TRUE(disposed.ok()) << disposed.error_message();
  const std::string second = MustStartTreatment("Room 4");
  WireError e;
  EXPECT_TRUE(IsRefusal(Open(Unit("S1"), second), grpc::StatusCode::FAILED_PRECONDITION,
                        "CARTRIDGE_DISPOSED", &e));
  EXPECT_EQ(Meta(e, "treatment"), first);
  EXPECT_EQ(Meta(e, "room"), "Room 3");
  EXPECT_EQ(Meta(e, "container"), "SHARPS-7");
  // A second disposal is refused the same way.
  EXPECT_TRUE(IsRefusal(Dispose(Unit("S1"), "SHARPS-8"), grpc::StatusCode::FAILED_PRECONDITION,
                        "CARTRIDGE_DISPOSED"));
}

TEST_F(RpcTest, OpenOfADiscardedUnitIsRefusedAsDiscarded) {
  MustReceive({Unit("S1")});
  v1::DiscardCartridgeRequest req;
  req.set_barcode(Unit("S1"));
  req.set_reason("package damaged");
  v1::Cartridge discarded;
  grpc::Status s = inventory_->DiscardCartridge(Context().get(), req, &discarded);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(discarded.state(), v1::CARTRIDGE_STATE_DISCARDED_UNUSED);
  const std::string t = MustStartTreatment();
  WireError e;
  EXPECT_TRUE(IsRefusal(Open(Unit("S1"), t), grpc::StatusCode::FAILED_PRECONDITION,
                        "CARTRIDGE_DISCARDED", &e));
  EXPECT_EQ(Meta(e, "reason"), "package damaged");
}

TEST_F(RpcTest, OpenOfAnUnknownUnitIsNotFoundAsNotInStock) {
  MustReceive({Unit("S1")});
  const std::string t = MustStartTreatment();
  WireError e;
  EXPECT_TRUE(
      IsRefusal(Open(Unit("S99"), t), grpc::StatusCode::NOT_FOUND, "CARTRIDGE_NOT_IN_STOCK", &e));
  EXPECT_EQ(Meta(e, "serial"), "S99");
  EXPECT_EQ(Meta(e, "gtin"), kGtin);
}

TEST_F(RpcTest, ABadBarcodeIsInvalidArgumentNamingTheField) {
  const std::string t = MustStartTreatment();
  WireError e;
  // Check digit 3 instead of 2.
  EXPECT_TRUE(IsRefusal(Open("(01)09506000134353(17)271231(10)LOT-A(21)S1", t),
                        grpc::StatusCode::INVALID_ARGUMENT, "BARCODE_INVALID", &e));
  EXPECT_EQ(Meta(e, "field"), "barcode");
  EXPECT_THAT(Meta(e, "why"), Not(IsEmpty()));
  EXPECT_THAT(Meta(e, "why"), Not(HasSubstr("<no")));

  v1::ReceiveCartridgesResponse resp;
  EXPECT_TRUE(IsRefusal(Receive({Unit("S1"), "hello"}, &resp), grpc::StatusCode::INVALID_ARGUMENT,
                        "BARCODE_INVALID", &e));
  EXPECT_EQ(Meta(e, "field"), "barcodes[1]");
  EXPECT_THAT(resp.cartridges(), IsEmpty());
}

TEST_F(RpcTest, ANonNumericTreatmentIdIsInvalidArgumentNamingTreatmentId) {
  MustReceive({Unit("S1")});
  for (const char* bad : {"abc", "12x", "-3", "0", ""}) {
    SCOPED_TRACE(bad);
    WireError e;
    grpc::Status s = Open(Unit("S1"), bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    ASSERT_TRUE(e.status.ParseFromString(s.error_details()));
    ASSERT_EQ(e.status.details_size(), 1);
    ASSERT_TRUE(e.status.details(0).UnpackTo(&e.info));
    EXPECT_EQ(e.info.domain(), "steritrack");
    EXPECT_EQ(Meta(e, "field"), "treatment_id");
    EXPECT_THAT(s.error_message(), HasSubstr("treatment_id"));
  }
  EXPECT_EQ(MustGetCartridge(Unit("S1")).state(), v1::CARTRIDGE_STATE_RECEIVED);
}

// ---------------------------------------------------------------------------------------------------
// Actor

TEST_F(RpcTest, TheActorHeaderBecomesTheActorOnTheRecord) {
  v1::ReceiveCartridgesResponse received;
  ASSERT_TRUE(Receive({Unit("S1")}, &received, "nurse.kim").ok());
  ASSERT_THAT(received.cartridges(), SizeIs(1));
  EXPECT_EQ(received.cartridges(0).received_by(), "nurse.kim");

  const std::string t = MustStartTreatment("Room 3", "client-0042", "reception.amy");
  v1::Cartridge opened;
  grpc::Status s = Open(Unit("S1"), t, &opened, "nurse.lee");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(opened.opened_by(), "nurse.lee");
  EXPECT_EQ(opened.treatment_id(), t);
  EXPECT_EQ(opened.room(), "Room 3");
  EXPECT_EQ(Seconds(opened.open_time()), absl::ToUnixSeconds(kNow));

  v1::Cartridge stored = MustGetCartridge(Unit("S1"));
  EXPECT_EQ(stored.received_by(), "nurse.kim");
  EXPECT_EQ(stored.opened_by(), "nurse.lee");
  std::map<std::string, std::string> actor_of;
  for (const v1::HistoryEvent& e : stored.history()) actor_of[e.action()] = e.actor();
  EXPECT_EQ(actor_of["CARTRIDGE_RECEIVED"], "nurse.kim");
  EXPECT_EQ(actor_of["CARTRIDGE_OPENED"], "nurse.lee");

  v1::GetTreatmentRequest get;
  get.set_id(t);
  v1::Treatment treatment;
  ASSERT_TRUE(treatments_->GetTreatment(Context().get(), get, &treatment).ok());
  EXPECT_EQ(treatment.started_by(), "reception.amy");
}

TEST_F(RpcTest, WithoutCredentialsACallIsRefusedAndRecordsNothing) {
  WireError e;
  EXPECT_TRUE(IsRefusal(Receive({Unit("S1")}, nullptr, /*actor=*/""),
                        grpc::StatusCode::UNAUTHENTICATED, "CREDENTIALS_MISSING", &e));
  v1::ListCartridgesRequest list;
  v1::ListCartridgesResponse listed;
  ASSERT_TRUE(inventory_->ListCartridges(Context().get(), list, &listed).ok());
  EXPECT_THAT(listed.cartridges(), IsEmpty());
}

TEST_F(RpcTest, AForgedActorHeaderIsIgnoredTheCallerIsRecordedUnderItsOwnName) {
  std::unique_ptr<grpc::ClientContext> ctx = Context("nurse.kim");
  ctx->AddMetadata(kActorHeader, "someone-else");
  v1::ReceiveCartridgesRequest req;
  req.add_barcodes(Unit("S1"));
  v1::ReceiveCartridgesResponse received;
  grpc::Status s = inventory_->ReceiveCartridges(ctx.get(), req, &received);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_THAT(received.cartridges(), SizeIs(1));
  EXPECT_EQ(received.cartridges(0).received_by(), "nurse.kim");
  v1::Cartridge stored = MustGetCartridge(Unit("S1"));
  for (const v1::HistoryEvent& e : stored.history()) EXPECT_EQ(e.actor(), "nurse.kim");
}

// ---------------------------------------------------------------------------------------------------
// Idempotency and pagination

TEST_F(RpcTest, RetryWithTheSameRequestIdReturnsTheIdenticalResponseAndRecordsOnce) {
  v1::ReceiveCartridgesResponse received_first, received_again;
  ASSERT_TRUE(Receive({Unit("S1")}, &received_first, "nurse.kim", "recv-1").ok());
  clock_.Set(kNow + absl::Minutes(1));
  ASSERT_TRUE(Receive({Unit("S1")}, &received_again, "nurse.kim", "recv-1").ok());
  EXPECT_EQ(received_again.SerializeAsString(), received_first.SerializeAsString());

  const std::string t = MustStartTreatment();
  clock_.Set(kNow + absl::Minutes(2));
  v1::Cartridge first, again;
  grpc::Status s = Open(Unit("S1"), t, &first, "nurse.kim", "open-1");
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The answer to the timed-out first attempt is lost; the client retries a little later.
  clock_.Set(kNow + absl::Minutes(3));
  s = Open(Unit("S1"), t, &again, "nurse.kim", "open-1");
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString())
      << "first: " << first.ShortDebugString() << "\nagain: " << again.ShortDebugString();

  v1::Cartridge stored = MustGetCartridge(Unit("S1"));
  EXPECT_EQ(CountActions(stored, "CARTRIDGE_RECEIVED"), 1);
  EXPECT_EQ(CountActions(stored, "CARTRIDGE_OPENED"), 1);
  EXPECT_EQ(Seconds(stored.open_time()), absl::ToUnixSeconds(kNow + absl::Minutes(2)));

  // The same id for a different request is refused, not replayed.
  const std::string other = MustStartTreatment("Room 9");
  EXPECT_TRUE(IsRefusal(Open(Unit("S1"), other, nullptr, "nurse.kim", "open-1"),
                        grpc::StatusCode::INVALID_ARGUMENT, "REQUEST_ID_REUSED"));
}

TEST_F(RpcTest, PagingThroughListCartridgesVisitsEveryUnitExactlyOnce) {
  std::vector<std::string> barcodes;
  for (int i = 1; i <= 7; ++i) barcodes.push_back(Unit(StrCat("S", i)));
  MustReceive(barcodes);

  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListCartridgesRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    v1::ListCartridgesResponse resp;
    grpc::Status s = inventory_->ListCartridges(Context().get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ++pages;
    EXPECT_LE(resp.cartridges_size(), 2);
    for (const v1::Cartridge& c : resp.cartridges()) seen.push_back(c.serial());
    token = resp.next_page_token();
    ASSERT_LE(pages, 10) << "pagination does not end";
  } while (!token.empty());

  EXPECT_EQ(pages, 4);
  EXPECT_EQ(seen, (std::vector<std::string>{"S1", "S2", "S3", "S4", "S5", "S6", "S7"}));

  v1::ListCartridgesRequest bad;
  bad.set_page_token("not-a-token");
  v1::ListCartridgesResponse resp;
  WireError e;
  EXPECT_TRUE(IsRefusal(inventory_->ListCartridges(Context().get(), bad, &resp),
                        grpc::StatusCode::INVALID_ARGUMENT, "INVALID_FIELD", &e));
  EXPECT_EQ(Meta(e, "field"), "page_token");
}

// ---------------------------------------------------------------------------------------------------
// Health, reflection, logging, shutdown

TEST_F(RpcTest, HealthCheckSaysServing) {
  grpc::GenericStub stub(channel_);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::ClientContext> ctx = Context("");
  const std::string method = "/grpc.health.v1.Health/Check";
  // HealthCheckRequest{service: ""} is the empty message.
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(ctx.get(), method, BufferOf(""), &cq);
  ASSERT_NE(call, nullptr);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_EQ(tag, reinterpret_cast<void*>(1));
  EXPECT_TRUE(ok);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  // HealthCheckResponse{status: SERVING}: field 1, varint 1.
  EXPECT_EQ(Flatten(response), std::string("\x08\x01", 2));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(RpcTest, ReflectionListsTheSteritrackServices) {
  grpc::GenericStub stub(channel_);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::ClientContext> ctx = Context();
  const std::string method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(ctx.get(), method, &cq);
  ASSERT_NE(call, nullptr);
  // Each step waits for its own completion before the next starts.
  auto await = [&cq](intptr_t expected) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(tag, reinterpret_cast<void*>(expected));
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(await(1));
  // ServerReflectionRequest{list_services: "*"}: field 7, length-delimited.
  call->Write(BufferOf(std::string("\x3a\x01*", 3)), reinterpret_cast<void*>(2));
  ASSERT_TRUE(await(2));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(await(3));
  call->WritesDone(reinterpret_cast<void*>(4));
  EXPECT_TRUE(await(4));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  EXPECT_TRUE(await(5));
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();

  const std::string bytes = Flatten(response);
  EXPECT_THAT(bytes, HasSubstr("steritrack.v1.InventoryService"));
  EXPECT_THAT(bytes, HasSubstr("steritrack.v1.TreatmentService"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(RpcTest, EachRequestIsLoggedWithMethodAndOutcomeButNeverTheClientReference) {
  constexpr std::string_view kClientRef = "CLIENT-REF-7781-SECRET";
  MustReceive({Unit("S1")});
  const std::string t = MustStartTreatment("Room 3", std::string(kClientRef));
  MustOpen(Unit("S1"), t);
  const std::string t2 = MustStartTreatment("Room 4", std::string(kClientRef));
  ASSERT_FALSE(Open(Unit("S1"), t2).ok());
  v1::GetTreatmentRequest get;
  get.set_id(t);
  v1::Treatment treatment;
  ASSERT_TRUE(treatments_->GetTreatment(Context().get(), get, &treatment).ok());
  EXPECT_EQ(treatment.client_ref(), kClientRef);  // the caller gets it back; the log does not

  std::vector<std::string> lines = LogLines();
  // Where this process may not lower a thread's nice value, the server said so as it started.
  std::erase_if(lines, [](const std::string& line) {
    return line.find("the write lane runs at the server's priority") != std::string::npos;
  });
  ASSERT_THAT(lines, SizeIs(6));  // one line per request
  auto has_line = [&lines](std::vector<std::string_view> parts) {
    for (const std::string& line : lines) {
      bool all = true;
      for (std::string_view p : parts) all = all && line.find(p) != std::string::npos;
      if (all) return true;
    }
    return false;
  };
  EXPECT_TRUE(has_line({"ReceiveCartridges", "OK"}));
  EXPECT_TRUE(has_line({"StartTreatment", "OK"}));
  EXPECT_TRUE(has_line({"OpenCartridge", "OK"}));
  EXPECT_TRUE(has_line({"OpenCartridge", "FAILED_PRECONDITION", "CARTRIDGE_ALREADY_USED"}));
  EXPECT_TRUE(has_line({"GetTreatment", "OK"}));
  for (const std::string& line : lines) {
    EXPECT_THAT(line, Not(HasSubstr(std::string(kClientRef))));
    EXPECT_THAT(line, HasSubstr("ms"));  // latency
  }
}

TEST_F(RpcTest, ShutdownWithAGracePeriodLetsAnInFlightCallFinish) {
  MustReceive({Unit("S1")});
  const std::string t = MustStartTreatment();

  gate_->Arm();
  grpc::Status in_flight = grpc::Status(grpc::StatusCode::UNKNOWN, "not run");
  v1::Cartridge opened;
  std::thread call([&] { in_flight = Open(Unit("S1"), t, &opened); });
  gate_->WaitUntilEntered();  // the request is inside the server, before its write
  std::thread stopper([&] { server_->Shutdown(absl::Seconds(60)); });
  gate_->Release();
  call.join();
  stopper.join();

  ASSERT_TRUE(in_flight.ok()) << in_flight.error_code() << " " << in_flight.error_message();
  EXPECT_EQ(opened.state(), v1::CARTRIDGE_STATE_OPENED);
  std::unique_ptr<ReadTransaction> read = *store_->BeginRead();
  std::optional<Cartridge> stored = *read->cartridges().FindCartridge(kGtin, "S1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->state, CartridgeState::kOpened);
  // And the server no longer answers.
  v1::GetCartridgeRequest req;
  req.set_barcode(Unit("S1"));
  v1::Cartridge resp;
  EXPECT_FALSE(inventory_->GetCartridge(Context().get(), req, &resp).ok());
}

}  // namespace
}  // namespace steritrack
