#include "client/config.h"

#include <sys/stat.h>
#include <toml++/toml.h>

#include <cstdlib>
#include <sstream>

#include "client/bounded_input.h"

namespace steritrack::cli {
namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

std::string Where(const std::string& path, const toml::source_region& src) {
  std::ostringstream s;
  s << path << ":" << src.begin.line;
  return s.str();
}

// Reads a string key; a key of another type is an error naming its line.
bool ReadString(const toml::table& table, const std::string& path, const std::string& key,
                std::string* out, std::string* error) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return true;
  if (const auto* value = node->as_string()) {
    *out = value->get();
    return true;
  }
  *error = Where(path, node->source()) + ": '" + key + "' must be a string";
  return false;
}

}  // namespace

bool LoadFileConfig(const std::string& explicit_path, FileConfig* config, std::string* error) {
  std::string path = explicit_path;
  if (path.empty()) {
    std::string xdg;
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x != nullptr && *x != '\0') {
      xdg = std::string(x) + "/steritrack/config.toml";
    } else if (const char* home = std::getenv("HOME"); home != nullptr) {
      xdg = std::string(home) + "/.config/steritrack/config.toml";
    }
    if (!xdg.empty() && Exists(xdg)) {
      path = xdg;
    } else if (Exists("/etc/steritrack/config.toml")) {
      path = "/etc/steritrack/config.toml";
    } else {
      return true;  // no file: defaults and environment only
    }
  } else if (!Exists(path)) {
    *error = path + ": configuration file does not exist";
    return false;
  }
  // Read within bounds first: toml++ would read any file, /dev/zero included, into memory.
  absl::StatusOr<std::string> text =
      ReadBoundedFile("configuration file", path, kMaxSettingsFileBytes);
  if (!text.ok()) {
    *error = std::string(text.status().message());
    return false;
  }
  toml::table table;
  try {
    table = toml::parse(*text, path);
  } catch (const toml::parse_error& e) {
    std::ostringstream s;
    s << path << ":" << e.source().begin.line << ": " << e.description();
    *error = s.str();
    return false;
  }
  config->path = path;
  static const char* const kKeys[] = {"server",     "site",  "room", "clinician",
                                      "gs_standin", "queue", "tls",  "token_file"};
  for (const auto& [key, node] : table) {
    bool known = false;
    for (const char* k : kKeys) known = known || key.str() == k;
    if (!known) {
      *error = Where(path, node.source()) + ": unknown setting '" + std::string(key.str()) +
               "' (known: server, site, room, clinician, gs_standin, queue, token_file, [tls])";
      return false;
    }
  }
  if (!ReadString(table, path, "server", &config->server, error) ||
      !ReadString(table, path, "site", &config->site, error) ||
      !ReadString(table, path, "room", &config->room, error) ||
      !ReadString(table, path, "clinician", &config->clinician, error) ||
      !ReadString(table, path, "gs_standin", &config->gs_standin, error) ||
      !ReadString(table, path, "queue", &config->queue, error) ||
      !ReadString(table, path, "token_file", &config->token_file, error)) {
    return false;
  }
  if (const toml::node* tls = table.get("tls")) {
    const toml::table* t = tls->as_table();
    if (t == nullptr) {
      *error = Where(path, tls->source()) + ": 'tls' must be a table ([tls])";
      return false;
    }
    if (!ReadString(*t, path, "ca", &config->tls_ca, error) ||
        !ReadString(*t, path, "cert", &config->tls_cert, error) ||
        !ReadString(*t, path, "key", &config->tls_key, error)) {
      return false;
    }
  }
  return true;
}

}  // namespace steritrack::cli
