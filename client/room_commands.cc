// room, sync.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>

#include "client/commands.h"
#include "client/numbers.h"
#include "client/output.h"
#include "client/room.h"

namespace steritrack::cli {

void AddRoomCommand(CLI::App& app, const Globals& g, Action& action) {
  struct Args {
    std::string room, clinician, treatment;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "room", "Treatment-room mode: one scan per line from a scanner or a pipe, answered OK/STOP");
  cmd->add_option("--room", a->room, "this room (default: config 'room')");
  cmd->add_option("--clinician", a->clinician, "who treats (default: config 'clinician')");
  cmd->add_option("--treatment", a->treatment, "resume a treatment in progress")->check(RecordId());
  cmd->footer(
      "Scan or type the client reference to start a treatment, scan cartridges to open them,\n"
      "type 'dispose' then scan the sharps container and the used cartridges, 'end' to end the\n"
      "treatment, 'help' for all commands.\n"
      "Example:\n  steritrack --gs-standin '^]' room --room 3 --clinician nurse.kim");
  cmd->callback([&g, &action, a] {
    action = [&g, a] {
      Output out(g.json, std::cout, std::cerr);
      RoomOptions options{.room = a->room.empty() ? g.room : a->room,
                          .clinician = a->clinician.empty() ? g.clinician : a->clinician,
                          .gs_standin = g.gs_standin,
                          .treatment_id = a->treatment,
                          .json = g.json};
      if (options.room.empty())
        return out.BadInput("--room", "is required (or set room in the config file)");
      if (options.clinician.empty()) {
        return out.BadInput("--clinician", "is required (or set clinician in the config file)");
      }
      options.interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && !g.json;
      const char* no_color = std::getenv("NO_COLOR");
      options.color = options.interactive && (no_color == nullptr || *no_color == '\0');
      Session session(SessionFor(g));
      return RunRoom(session, options, std::cin, std::cout);
    };
  });
}

void AddSyncCommand(CLI::App& app, const Globals& g, Action& action) {
  CLI::App* cmd = app.add_subcommand(
      "sync", "Send disposals and treatment ends kept while the server was unreachable");
  cmd->footer(
      "Exit 0 when everything queued was delivered; 1 when the server is still unreachable or\n"
      "the queue file cannot be read; 3 when the server refused a queued write (listed).\n"
      "Example:\n  steritrack sync");
  cmd->callback([&g, &action] {
    action = [&g] {
      Session session(SessionFor(g));
      SyncReport r = session.Sync();
      int code = kExitOk;
      const bool queue_ok = r.queue_error.empty();
      if (g.json) {
        std::cout << "{\"ok\":"
                  << (queue_ok && r.unreachable.ok() && r.not_allowed.ok() && r.refused.empty()
                          ? "true"
                          : "false")
                  << ",\"sent\":" << r.sent.size() << ",\"refused\":" << r.refused.size();
        if (queue_ok) {
          std::cout << ",\"pending\":" << r.still_pending << "}\n";
        } else {
          // What is still queued is unknown: the file could not be read.
          google::protobuf::Value error;
          error.set_string_value(r.queue_error);
          std::string quoted;
          static_cast<void>(google::protobuf::util::MessageToJsonString(error, &quoted));
          std::cout << ",\"outcome\":\"ERROR\",\"reason\":\"OFFLINE_QUEUE_UNAVAILABLE\""
                    << ",\"message\":" << quoted << "}\n";
        }
      } else {
        for (const auto& w : r.sent) std::cout << "OK — sent " << w.description << "\n";
        for (const auto& [w, st] : r.refused) {
          std::cout << "STOP — server refused " << w.description << ": " << st.error_message()
                    << "\n";
        }
        if (!queue_ok) {
          std::cout << "ERROR — " << r.queue_error << "; " << r.sent.size() << " sent, "
                    << r.refused.size() << " refused before it; what is still queued is unknown\n";
        } else if (!r.not_allowed.ok()) {
          std::cout << Describe(r.not_allowed, Kind::kWrite, g.server).line << "; "
                    << r.still_pending << " write(s) still queued\n";
        } else if (!r.unreachable.ok()) {
          std::cout << "ERROR — server " << g.server
                    << " unreachable: " << r.unreachable.error_message() << "; " << r.still_pending
                    << " write(s) still queued\n";
        } else {
          std::cout << "sync: " << r.sent.size() << " sent, " << r.refused.size() << " refused, "
                    << r.still_pending << " still queued\n";
        }
      }
      if (!r.refused.empty()) code = kExitStop;
      if (!r.unreachable.ok() || !r.not_allowed.ok() || !queue_ok) code = kExitError;
      return code;
    };
  });
}

}  // namespace steritrack::cli
