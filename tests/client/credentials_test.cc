// The CLI's credentials: where the token comes from (STERITRACK_TOKEN, else --token-file, else the
// config file's token_file), what makes a token or TLS file an error naming it, and the TLS files.
#include "client/credentials.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace steritrack::cli {
namespace {

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "credentials_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string File(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  static std::string Message(const absl::StatusOr<Credentials>& c) {
    return std::string(c.status().message());
  }

  std::string dir_;
};

TEST_F(CredentialsTest, TheEnvironmentWinsOverTheFlagAndTheConfigFile) {
  absl::StatusOr<Credentials> c = LoadCredentials({.token_env = "from-env",
                                                   .token_file = File("flag", "from-flag\n"),
                                                   .config_token_file = File("cfg", "from-cfg")});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->token, "from-env");
}

TEST_F(CredentialsTest, TheFlagWinsOverTheConfigFile) {
  absl::StatusOr<Credentials> c = LoadCredentials(
      {.token_file = File("flag", "from-flag\n"), .config_token_file = File("cfg", "from-cfg")});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->token, "from-flag");
}

TEST_F(CredentialsTest, TheConfigFileIsTheLastResort) {
  absl::StatusOr<Credentials> c = LoadCredentials({.config_token_file = File("cfg", "from-cfg")});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->token, "from-cfg");
}

TEST_F(CredentialsTest, AnEmptyEnvironmentVariableCountsAsUnset) {
  absl::StatusOr<Credentials> c =
      LoadCredentials({.token_env = "", .token_file = File("flag", "from-flag")});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->token, "from-flag");
}

TEST_F(CredentialsTest, WithoutAnySourceThereIsNoToken) {
  absl::StatusOr<Credentials> c = LoadCredentials({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->token, "");
  EXPECT_FALSE(c->tls());
}

TEST_F(CredentialsTest, TrailingWhitespaceAndTheNewlineAreTrimmed) {
  absl::StatusOr<Credentials> c = LoadCredentials({.token_file = File("t", "abc123 \t\r\n\n")});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->token, "abc123");
  c = LoadCredentials({.token_env = "abc123\n"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->token, "abc123");
}

TEST_F(CredentialsTest, AnUnreadableTokenFileIsAnErrorNamingIt) {
  const std::string missing = dir_ + "/missing.token";
  absl::StatusOr<Credentials> c = LoadCredentials({.token_file = missing});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Message(c).find("token file " + missing + ": cannot be read"), std::string::npos)
      << Message(c);
}

TEST_F(CredentialsTest, AnEmptyTokenFileIsAnErrorNamingIt) {
  for (const std::string text : {"", "\n", "  \n\t"}) {
    const std::string path = File("empty", text);
    absl::StatusOr<Credentials> c = LoadCredentials({.token_file = path});
    ASSERT_FALSE(c.ok()) << "'" << text << "'";
    EXPECT_NE(Message(c).find(path + ": the token is empty"), std::string::npos) << Message(c);
  }
}

TEST_F(CredentialsTest, TheConfigFilesTokenFileIsNamedWithTheConfigFile) {
  const std::string missing = dir_ + "/gone.token";
  absl::StatusOr<Credentials> c =
      LoadCredentials({.config_token_file = missing, .config_path = "/etc/steritrack/config.toml"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(Message(c).find("token_file in /etc/steritrack/config.toml"), std::string::npos)
      << Message(c);
  EXPECT_NE(Message(c).find(missing), std::string::npos) << Message(c);
}

TEST_F(CredentialsTest, ATokenWithASpaceOrLineBreakInsideIsRefused) {
  absl::StatusOr<Credentials> c = LoadCredentials({.token_file = File("two", "abc\ndef\n")});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(Message(c).find("line break"), std::string::npos) << Message(c);
  c = LoadCredentials({.token_env = "abc def"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(Message(c).find("STERITRACK_TOKEN"), std::string::npos) << Message(c);
}

constexpr char kPem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

TEST_F(CredentialsTest, CaAloneIsServerVerifiedTls) {
  absl::StatusOr<Credentials> c = LoadCredentials({.ca_file = File("ca.pem", kPem)});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->tls());
  EXPECT_EQ(c->ca_pem, kPem);
  EXPECT_EQ(c->cert_pem, "");
}

TEST_F(CredentialsTest, CertAndKeyGoTogether) {
  absl::StatusOr<Credentials> c = LoadCredentials({.cert_file = File("c.pem", kPem)});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(Message(c).find("needs --key"), std::string::npos) << Message(c);
  c = LoadCredentials({.key_file = File("k.pem", kPem)});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(Message(c).find("needs --cert"), std::string::npos) << Message(c);
  c = LoadCredentials({.ca_file = File("ca.pem", kPem),
                       .cert_file = File("c.pem", kPem),
                       .key_file = File("k.pem", kPem)});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->key_pem, kPem);
}

TEST_F(CredentialsTest, AMissingOrNonPemTlsFileIsNamed) {
  const std::string missing = dir_ + "/missing-ca.pem";
  absl::StatusOr<Credentials> c = LoadCredentials({.ca_file = missing});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(Message(c).find("CA file " + missing + ": cannot be read"), std::string::npos)
      << Message(c);
  const std::string junk = File("junk.pem", "hello\n");
  c = LoadCredentials({.ca_file = junk});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(Message(c).find(junk + ": not a PEM file"), std::string::npos) << Message(c);
}

}  // namespace
}  // namespace steritrack::cli
