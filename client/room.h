// Room mode: the treatment-room terminal. Reads one scan per line (keyboard-wedge scanner or pipe)
// and answers each with one line beginning with OK or STOP.
//
// Flow: scan or type the client reference to start a treatment; scan cartridges to open them in it;
// "dispose" switches to disposal (scan the sharps container, then the used cartridges); "open"
// switches back; "end" ends the treatment. A line that is not a barcode is a command, a client
// reference or a container code according to the mode, never silently ignored.
#ifndef STERITRACK_CLIENT_ROOM_H_
#define STERITRACK_CLIENT_ROOM_H_

#include <istream>
#include <ostream>
#include <string>

#include "client/session.h"

namespace steritrack::cli {

struct RoomOptions {
  std::string room;
  std::string clinician;
  std::string gs_standin;
  std::string treatment_id;  // resume a treatment in progress
  bool interactive = false;  // stdin and stdout are a terminal: prompt, colour, bell
  bool color = false;        // colour (interactive and NO_COLOR unset)
  bool json = false;         // one JSON object per answer
};

// Runs until end of input or "quit". Returns the process exit code (0).
int RunRoom(Session& session, const RoomOptions& options, std::istream& in, std::ostream& out);

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_ROOM_H_
