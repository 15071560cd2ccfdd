#include "steritrack/listen_address.h"

#include <arpa/inet.h>

#include <cctype>
#include <string>

namespace steritrack {
namespace {

bool IsLocalhost(std::string_view host) {
  if (host.size() != 9) return false;
  for (size_t i = 0; i < host.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(host[i])) != "localhost"[i]) return false;
  }
  return true;
}

bool IsLoopbackHost(std::string_view host) {
  if (IsLocalhost(host)) return true;
  const std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // ::ffff:127.x.y.z is IPv4 loopback reached through an IPv6 socket.
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace

bool IsLocalOnlyAddress(std::string_view address) {
  if (address.starts_with("unix:") || address.starts_with("unix-abstract:")) {
    return true;
  }
  std::string_view host;
  if (address.starts_with("[")) {
    const size_t close = address.find(']');
    if (close == std::string_view::npos) return false;
    host = address.substr(1, close - 1);
    const std::string_view rest = address.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(":")) return false;
  } else {
    const size_t colon = address.rfind(':');
    host = colon == std::string_view::npos ? address : address.substr(0, colon);
    // A bare IPv6 address with a port cannot be told from one without: gRPC wants brackets.
    if (host.find(':') != std::string_view::npos) return false;
  }
  return IsLoopbackHost(host);
}

}  // namespace steritrack
