// Which listen addresses steritrackd serves without TLS: only those no other machine can reach.
#include "steritrack/listen_address.h"

#include <cctype>
#include <string>

#include "gtest/gtest.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

struct Case {
  std::string address;
  bool local_only;
};

class ListenAddressTest : public ::testing::TestWithParam<Case> {};

TEST_P(ListenAddressTest, OnlyLoopbackAndUnixSocketsAreLocal) {
  EXPECT_EQ(IsLocalOnlyAddress(GetParam().address), GetParam().local_only) << GetParam().address;
}

INSTANTIATE_TEST_SUITE_P(
    Addresses, ListenAddressTest,
    ::testing::Values(
        // IPv4 loopback is all of 127.0.0.0/8.
        Case{"127.0.0.1:50051", true}, Case{"127.0.0.1:0", true}, Case{"127.1.2.3:50051", true},
        Case{"127.255.255.254:1", true}, Case{"127.0.0.1", true},
        // IPv6 loopback, bracketed as gRPC wants it; IPv4 loopback mapped into IPv6.
        Case{"[::1]:50051", true}, Case{"[0:0:0:0:0:0:0:1]:50051", true}, Case{"[::1]", true},
        Case{"[::ffff:127.0.0.1]:50051", true},
        // The name that means this machine, in any case.
        Case{"localhost:50051", true}, Case{"LocalHost:50051", true},
        // Unix sockets cannot be reached over the network.
        Case{"unix:/run/steritrack/steritrackd.sock", true}, Case{"unix:relative.sock", true},
        Case{"unix:///run/steritrack.sock", true}, Case{"unix-abstract:steritrack", true},
        // Wildcards: every interface.
        Case{"0.0.0.0:50051", false}, Case{"[::]:50051", false}, Case{":50051", false},
        Case{"[::ffff:0.0.0.0]:50051", false}, Case{"*:50051", false},
        // LAN and public addresses.
        Case{"192.168.1.20:50051", false}, Case{"10.0.0.5:50051", false},
        Case{"128.0.0.1:50051", false}, Case{"[fe80::1]:50051", false},
        Case{"[2001:db8::1]:50051", false}, Case{"[::2]:50051", false},
        // Host names other than localhost may resolve to anything.
        Case{"steritrack.clinic.local:50051", false}, Case{"localhost.example.com:50051", false},
        Case{"mylocalhost:50051", false}, Case{"127.0.0.1.nip.io:50051", false},
        // Forms that are not plainly loopback are refused rather than guessed at.
        Case{"::1:50051", false}, Case{"[::1:50051", false}, Case{"[::1]x50051", false},
        Case{"127.1:50051", false}, Case{"", false}, Case{"vsock:3:50051", false},
        Case{"ipv4:127.0.0.1:50051", false}, Case{"dns:///localhost:50051", false}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string name = StrCat(info.index, info.param.local_only ? "_Local_" : "_Network_");
      for (char c : info.param.address)
        name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

}  // namespace
}  // namespace steritrack::rpc
