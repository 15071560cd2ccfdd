// The CLI's configuration file (TOML), the lowest layer of flag > environment > file > default.
//
//   server = "127.0.0.1:50051"
//   room = "3"
//   clinician = "nurse.kim"
//   gs_standin = "^]"          # what the scanner types instead of ASCII 29
//   queue = "/var/lib/steritrack/queue.db"
//   token_file = "/etc/steritrack/room3.token"   # the bearer token, alone in the file
//   [tls]                      # TLS: the CA that signed steritrackd's certificate; with cert and
//   ca = "/etc/steritrack/ca.pem"                 # key, mutual TLS (a client certificate)
//   cert = "/etc/steritrack/room3.pem"
//   key = "/etc/steritrack/room3.key"
#ifndef STERITRACK_CLIENT_CONFIG_H_
#define STERITRACK_CLIENT_CONFIG_H_

#include <string>

namespace steritrack::cli {

struct FileConfig {
  std::string path;  // the file read, empty if none
  std::string server, site, room, clinician, gs_standin, queue, token_file;
  std::string tls_ca, tls_cert, tls_key;
};

// Reads `explicit_path` if given (it must exist), else the first existing of
// $XDG_CONFIG_HOME/steritrack/config.toml (~/.config/...) and /etc/steritrack/config.toml.
// Returns false with `error` naming the file, line and problem for a bad file.
bool LoadFileConfig(const std::string& explicit_path, FileConfig* config, std::string* error);

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_CONFIG_H_
