// steritrackd's configuration file (issue 10): TOML, read with the same parser as the CLI
// (toml++). Every key is a flag of steritrackd's main command without its "--" and with "_" for
// "-" (listen, tls_cert, disposal_limit_hours, ...); flags on the command line override the file.
// The keys and their meaning are the flags' own (`steritrackd config-keys` prints the table the
// README shows).
#ifndef STERITRACK_SERVER_CONFIG_FILE_H_
#define STERITRACK_SERVER_CONFIG_FILE_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"

namespace steritrack {

// The command-line words the file stands for ("--listen", "127.0.0.1:50051", "--demo", ...), for
// the options of `app`. Errors name the file, the line and the key: an unreadable or malformed
// file, an unknown key, a value of the wrong kind (a table, an array, a boolean for a value
// option, a value for a flag that is not true/false).
absl::StatusOr<std::vector<std::string>> ConfigFileArgs(const std::string& path,
                                                        const CLI::App& app);

// The settings table (Markdown): key, flag, default, meaning, from `app`'s options.
std::string ConfigKeysMarkdown(const CLI::App& app);

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CONFIG_FILE_H_
