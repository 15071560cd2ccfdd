// completion bash: a bash completion script generated from the command tree itself, so it never
// falls out of step with the commands.
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "client/commands.h"

namespace steritrack::cli {
namespace {

// The words after `path` (a command's own, then the global options that fall through to the app
// from it, `globals`) go into `words`.
void Walk(const CLI::App& app, const std::string& path, const std::string& globals,
          std::map<std::string, std::string>& words) {
  std::ostringstream w;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    w << sub->get_name() << " ";
    Walk(*sub, path.empty() ? sub->get_name() : path + "/" + sub->get_name(), globals, words);
  }
  for (const CLI::Option* opt : app.get_options()) {
    for (const std::string& name : opt->get_lnames()) w << "--" << name << " ";
  }
  if (!path.empty() && app.get_fallthrough()) w << globals;
  words[path] = w.str();
}

}  // namespace

std::vector<std::string> OptionNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt == app.get_help_ptr() || opt == app.get_help_all_ptr()) continue;
    for (const std::string& name : opt->get_lnames()) names.push_back("--" + name);
    for (const std::string& name : opt->get_snames()) names.push_back("-" + name);
  }
  return names;
}

std::string BashCompletion(const CLI::App& app) {
  std::ostringstream globals;  // each command has its own --help
  for (const std::string& name : OptionNames(app)) globals << name << " ";
  std::map<std::string, std::string> words;
  Walk(app, "", globals.str(), words);
  std::ostringstream s;
  s << "# bash completion for steritrack; load with: source <(steritrack completion bash)\n"
    << "_steritrack() {\n"
    << "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" path=\"\" w i\n"
    << "  declare -A words=(\n";
  // The root is "_": bash does not allow an empty associative-array key.
  for (const auto& [path, list] : words) {
    s << "    [\"" << (path.empty() ? "_" : path) << "\"]=\"" << list << "\"\n";
  }
  s << "  )\n"
    << "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
    << "    w=\"${COMP_WORDS[i]}\"\n"
    << "    [[ $w == -* ]] && continue\n"
    << "    if [[ -n ${words[${path:+$path/}$w]+set} ]]; then path=\"${path:+$path/}$w\"; fi\n"
    << "  done\n"
    << "  COMPREPLY=($(compgen -W \"${words[${path:-_}]}\" -- \"$cur\"))\n"
    << "}\n"
    << "complete -F _steritrack steritrack\n";
  return s.str();
}

void AddCompletionCommand(CLI::App& app, Action& action) {
  auto shell = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("completion", "Print a shell completion script");
  cmd->add_option("SHELL", *shell, "only bash for now")->required()->check(CLI::IsMember({"bash"}));
  cmd->footer("Example:\n  source <(steritrack completion bash)");
  cmd->callback([&app, &action, shell] {
    action = [&app] {
      std::cout << BashCompletion(app);
      return 0;
    };
  });
}

}  // namespace steritrack::cli
