// The server's TLS material: its certificate chain and key, and the CA that client certificates
// must come from (mutual TLS). Loaded once at start-up from PEM files and checked there, so that a
// wrong file stops steritrackd with the file's name instead of failing every handshake later. Pure
// functions of the files they read; thread-safe.
#ifndef STERITRACK_SERVER_RPC_SERVER_TLS_H_
#define STERITRACK_SERVER_RPC_SERVER_TLS_H_

#include <string>

#include "absl/status/statusor.h"

namespace steritrack::rpc {

struct ServerTls {
  std::string cert_chain_pem;   // the server's certificate, then any intermediates
  std::string private_key_pem;  // the key of the first certificate in cert_chain_pem
  // Empty: clients are not asked for a certificate. Otherwise every client must present a
  // certificate that this CA (one or more PEM certificates) verifies, or the handshake fails.
  std::string client_ca_pem;
};

struct ServerTlsFiles {
  std::string cert;       // REQUIRES: non-empty
  std::string key;        // REQUIRES: non-empty
  std::string client_ca;  // empty: no client certificates
};

// Reads and checks the files: each readable, the certificates and the key PEM that OpenSSL
// parses (the key unencrypted), and the key belonging to the certificate. The error names the
// file and what is wrong with it.
absl::StatusOr<ServerTls> LoadServerTls(const ServerTlsFiles& files);

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_SERVER_TLS_H_
