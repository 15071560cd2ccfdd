// Who is at the other end of a call, as its TLS client certificate says.
//
// With mutual TLS (steritrackd --client-ca) gRPC has verified the client's certificate against the
// clinic CA before any handler runs, and puts the leaf certificate in the call's AuthContext as the
// "x509_pem_cert" property. This reads the subject's CN (the identity, e.g. nurse.kim) and OU (the
// role, e.g. nurse) from it. Pure functions of their input; thread-safe.
#ifndef STERITRACK_SERVER_RPC_PEER_IDENTITY_H_
#define STERITRACK_SERVER_RPC_PEER_IDENTITY_H_

#include <grpcpp/security/auth_context.h>

#include <optional>
#include <string>
#include <string_view>

namespace steritrack::rpc {

struct CertificateSubject {
  std::string common_name;          // CN; empty when the subject has none
  std::string organizational_unit;  // OU; empty when the subject has none (the first if several)
};

// The subject of the peer's certificate, or nullopt when the peer sent none (plaintext, TLS
// without client certificates) or it cannot be parsed. Only meaningful when the server verifies
// client certificates: without --client-ca nothing vouches for the certificate.
std::optional<CertificateSubject> PeerCertificateSubject(const grpc::AuthContext& context);

// The subject of the first certificate in `pem`, or nullopt when there is none.
std::optional<CertificateSubject> CertificateSubjectFromPem(std::string_view pem);

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_PEER_IDENTITY_H_
