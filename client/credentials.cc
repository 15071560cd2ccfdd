#include "client/credentials.h"

#include <cctype>

#include "client/bounded_input.h"
#include "client/connection.h"

namespace steritrack::cli {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& what, const std::string& path) {
  if (path.empty()) return std::string();
  absl::StatusOr<std::string> text = ReadBoundedFile(what, path, kMaxPemFileBytes);
  if (!text.ok()) return text.status();
  if (text->find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(what + " " + path + ": not a PEM file");
  }
  return text;
}

// The token without trailing whitespace; `where` names its source in errors.
absl::StatusOr<std::string> CleanToken(std::string token, const std::string& where) {
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
    token.pop_back();
  }
  if (token.empty()) return absl::InvalidArgumentError(where + ": the token is empty");
  for (char c : token) {
    // A metadata value must be printable ASCII; anything else is not a token we issued.
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          where + ": the token holds a space, a line break or a control character");
    }
  }
  // gRPC aborts on a header value it does not allow; this also bounds the length.
  if (absl::Status header = CheckHeaderValue(where, token); !header.ok()) return header;
  return token;
}

}  // namespace

absl::StatusOr<Credentials> LoadCredentials(const CredentialSources& sources) {
  Credentials credentials;
  if (sources.cert_file.empty() != sources.key_file.empty()) {
    return absl::InvalidArgumentError(
        sources.cert_file.empty()
            ? "--key " + sources.key_file + " needs --cert (the client certificate it belongs to)"
            : "--cert " + sources.cert_file + " needs --key (its private key)");
  }
  absl::StatusOr<std::string> ca = ReadPem("CA file", sources.ca_file);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> cert = ReadPem("client certificate", sources.cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem("client key", sources.key_file);
  if (!key.ok()) return key.status();
  credentials.ca_pem = *std::move(ca);
  credentials.cert_pem = *std::move(cert);
  credentials.key_pem = *std::move(key);

  absl::StatusOr<std::string> token = std::string();
  if (sources.token_env.has_value() && !sources.token_env->empty()) {
    token = CleanToken(*sources.token_env, "STERITRACK_TOKEN");
  } else if (!sources.token_file.empty() || !sources.config_token_file.empty()) {
    const bool flag = !sources.token_file.empty();
    const std::string& path = flag ? sources.token_file : sources.config_token_file;
    const std::string what =
        flag ? "token file" : "token file (token_file in " + sources.config_path + ")";
    token = ReadBoundedFile(what, path, kMaxSettingsFileBytes);
    if (token.ok()) token = CleanToken(*std::move(token), what + " " + path);
  }
  if (!token.ok()) return token.status();
  credentials.token = *std::move(token);
  return credentials;
}

}  // namespace steritrack::cli
