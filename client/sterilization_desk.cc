#include "client/sterilization_desk.h"

#include <cctype>
#include <map>

#include "client/connection.h"

namespace steritrack::cli {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string ReleaseWord(v1::ReleaseState state) {
  std::string name = v1::ReleaseState_Name(state);
  return name.rfind("RELEASE_STATE_", 0) == 0 ? name.substr(14) : name;
}

std::string LoadName(const v1::Load& load) {
  return "load " + load.id() + " (" + load.lot_control_number() + ")";
}

std::string ReturnToServiceWords(const v1::Sterilizer& s) {
  if (s.negative_tests_required() <= 0) {
    // An older server sends no counts; the CLI has no number of its own to put in their place.
    return std::to_string(s.negative_tests_since_out_of_service()) +
           " consecutive negative BI test cycle(s) so far (the server sends no required count)";
  }
  return std::to_string(s.negative_tests_to_return()) + " more negative BI test cycle(s) needed (" +
         std::to_string(s.negative_tests_since_out_of_service()) + " of " +
         std::to_string(s.negative_tests_required()) + " consecutive so far)";
}

void PrintLookBack(std::ostringstream& text, const v1::LookBack& lb) {
  std::map<std::string, std::string> lot_control;
  text << "Loads (" << lb.loads_size() << "):\n";
  for (const auto& l : lb.loads()) {
    lot_control[l.id()] = l.lot_control_number();
    text << "  " << l.lot_control_number() << "  load " << l.id() << "  "
         << ReleaseWord(l.release_state()) << "  "
         << (l.test_cycle() ? std::string("BI test cycle")
                            : std::to_string(l.item_serials_size()) + " pack(s)")
         << "\n";
  }
  if (lb.entries_size() == 0) {
    text << "No treatment used an item from these loads.\n";
    return;
  }
  text << "Treatments that used items from these loads (" << lb.entries_size() << "):\n";
  for (const auto& e : lb.entries()) {
    text << "  item " << e.item_serial() << "  treatment " << e.treatment_id() << "  room "
         << e.room() << "  " << FormatTime(e.use_time()) << "  client " << e.client_ref()
         << "  clinician " << e.clinician() << "  (" << lot_control[e.load_id()] << ")\n";
  }
}

std::unique_ptr<v1::SterilizationService::Stub> NewSterilizationStub(Session& session) {
  return v1::SterilizationService::NewStub(session.connection().channel());
}

}  // namespace steritrack::cli
