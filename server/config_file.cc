#include "server/config_file.h"

#include <toml++/toml.h>

#include <algorithm>
#include <sstream>

#include "absl/strings/str_replace.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

std::string Where(const std::string& path, const toml::source_region& src) {
  return StrCat(path, ":", src.begin.line, ":", src.begin.column);
}

// Options that are not settings: help and the file itself.
bool IsSetting(const CLI::Option* o) {
  return o != nullptr && !o->get_lnames().empty() && o->get_lnames()[0] != "help" &&
         o->get_lnames()[0] != "config";
}

std::string KnownKeys(const CLI::App& app) {
  std::string keys;
  for (const CLI::Option* o : app.get_options()) {
    if (!IsSetting(o)) continue;
    StrAppend(&keys, keys.empty() ? "" : ", ",
              absl::StrReplaceAll(o->get_lnames()[0], {{"-", "_"}}));
  }
  return keys;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ConfigFileArgs(const std::string& path,
                                                        const CLI::App& app) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    if (e.source().begin.line == 0) {  // not opened at all
      return absl::InvalidArgumentError(
          StrCat(path, ": cannot be read (", std::string(e.description()), ")"));
    }
    return absl::InvalidArgumentError(
        StrCat(Where(path, e.source()), ": ", std::string(e.description())));
  }
  std::vector<std::string> args;
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    const std::string flag = "--" + absl::StrReplaceAll(name, {{"_", "-"}});
    const CLI::Option* option = nullptr;
    try {
      option = app.get_option(flag);
    } catch (const CLI::OptionNotFound&) {
    }
    if (!IsSetting(option)) {
      return absl::InvalidArgumentError(StrCat(Where(path, node.source()), ": unknown key '", name,
                                               "' (known: ", KnownKeys(app), ")"));
    }
    const bool is_flag = option->get_expected_max() == 0;
    if (const auto* b = node.as_boolean()) {
      if (!is_flag) {
        return absl::InvalidArgumentError(
            StrCat(Where(path, node.source()), ": key '", name, "' takes a value, not true/false"));
      }
      // A flag may default to true (group_commit): false is spelled out.
      args.push_back(b->get() ? flag : StrCat(flag, "=false"));
      continue;
    }
    if (is_flag) {
      return absl::InvalidArgumentError(
          StrCat(Where(path, node.source()), ": key '", name, "' is true or false"));
    }
    std::string value;
    if (const auto* s = node.as_string()) {
      value = s->get();
      // The words become a command line (C strings): a NUL would cut the value short unseen, and
      // no setting needs a control character.
      if (std::any_of(value.begin(), value.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
        return absl::InvalidArgumentError(
            StrCat(Where(path, node.source()), ": key '", name, "' holds a control character"));
      }
    } else if (const auto* i = node.as_integer()) {
      value = StrCat(i->get());
    } else if (const auto* f = node.as_floating_point()) {
      std::ostringstream out;
      out << f->get();
      value = out.str();
    } else {
      return absl::InvalidArgumentError(StrCat(Where(path, node.source()), ": key '", name,
                                               "' must be a single string or number"));
    }
    args.push_back(flag);
    args.push_back(value);
  }
  return args;
}

std::string ConfigKeysMarkdown(const CLI::App& app) {
  std::string out = "| Key | Flag | Default | Meaning |\n|---|---|---|---|\n";
  for (const CLI::Option* o : app.get_options()) {
    if (!IsSetting(o)) continue;
    const std::string flag = o->get_lnames()[0];
    // A flag is false unless it names its default (group_commit: true).
    const std::string def =
        o->get_expected_max() == 0 && o->get_default_str().empty() ? "false" : o->get_default_str();
    StrAppend(&out, "| `", absl::StrReplaceAll(flag, {{"-", "_"}}), "` | `--", flag, "` | ",
              def.empty() ? "" : StrCat("`", def, "`"), " | ", o->get_description(), " |\n");
  }
  return out;
}

}  // namespace steritrack
