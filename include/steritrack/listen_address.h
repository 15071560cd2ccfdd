// Which addresses are reachable only from this machine: steritrackd serves plaintext only there,
// and the CLI sends a bearer token in clear only there.
//
// A pure function of the address text, as given to --listen (gRPC's server address forms): IPv4
// loopback (127.0.0.0/8), IPv6 loopback ([::1], also IPv4-mapped ::ffff:127.x.y.z), `localhost`,
// and unix sockets (unix:PATH, unix-abstract:NAME). Everything else — the wildcards 0.0.0.0 and
// [::], an empty host, a LAN address, any other host name, other schemes — is reachable from the
// network, or might be, and needs TLS. Thread-safe.
#ifndef STERITRACK_LISTEN_ADDRESS_H_
#define STERITRACK_LISTEN_ADDRESS_H_

#include <string_view>

namespace steritrack {

// True when `address` (HOST:PORT, [IPV6]:PORT, unix:PATH or unix-abstract:NAME) is reachable only
// from this machine.
bool IsLocalOnlyAddress(std::string_view address);

}  // namespace steritrack

#endif  // STERITRACK_LISTEN_ADDRESS_H_
