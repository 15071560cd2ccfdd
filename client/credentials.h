// What the CLI presents to steritrackd: TLS (the CA that signed the server's certificate, and for
// mutual TLS a client certificate and key) and a bearer token. Read once per command, before any
// call, so that a missing or empty file is an error naming it instead of a refusal later.
//
// The token comes from STERITRACK_TOKEN, else --token-file, else the config file's token_file. It
// is never a command-line argument: that would show in `ps` and in shell history.
#ifndef STERITRACK_CLIENT_CREDENTIALS_H_
#define STERITRACK_CLIENT_CREDENTIALS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace steritrack::cli {

struct Credentials {
  // TLS is on when any of these is set. Without ca_pem the system's CAs verify the server.
  std::string ca_pem;
  std::string cert_pem;  // with key_pem: mutual TLS
  std::string key_pem;
  std::string token;  // sent as "authorization: Bearer <token>"; empty: none
  bool tls() const { return !ca_pem.empty() || !cert_pem.empty() || !key_pem.empty(); }
};

// Where the credentials come from: file names (flags, else config) and the environment's token.
struct CredentialSources {
  std::string ca_file, cert_file, key_file;
  std::optional<std::string> token_env;  // STERITRACK_TOKEN, when set
  std::string token_file;                // --token-file
  std::string config_token_file;         // token_file in the configuration file
  std::string config_path;               // the configuration file, for messages
};

// Reads the files. Errors (exit 2 for the CLI) name the file or setting: a file that cannot be
// read, an empty token, a token with spaces or control characters inside, a file that is not PEM, a
// client certificate without its key or the other way round. Trailing whitespace (the newline an
// editor adds) is trimmed from the token.
absl::StatusOr<Credentials> LoadCredentials(const CredentialSources& sources);

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_CREDENTIALS_H_
